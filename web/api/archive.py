"""An uploaded campaign folder: a .zip or .tar(.gz) archive unpacked into a private
temporary folder, within bounds (entries, sizes, no links, nothing outside the folder).

``campaign.yaml`` may be at the archive's top or inside its one top folder (what zipping
a folder gives).
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from partnercast.web.problems import Problem

MAX_ARCHIVE = 20_000_000
MAX_UNPACKED = 50_000_000
MAX_ENTRIES = 2000


def _refuse(reason: str) -> Problem:
    return Problem(422, f"file: {reason}", errors=[("file", reason)])


def _safe(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not name.strip():
        raise _refuse(f"an entry outside the folder: {name!r}")
    return path


def unpack(content: bytes, folder: Path) -> Path:
    """Unpack ``content`` into ``folder``; the campaign folder inside it."""
    if len(content) > MAX_ARCHIVE:
        raise _refuse(f"over {MAX_ARCHIVE} bytes")
    if zipfile.is_zipfile(io.BytesIO(content)):
        _unzip(content, folder)
    else:
        _untar(content, folder)
    if (folder / "campaign.yaml").is_file():
        return folder
    inside = [child for child in folder.iterdir() if child.is_dir()]
    if len(inside) == 1 and (inside[0] / "campaign.yaml").is_file():
        return inside[0]
    raise _refuse("no campaign.yaml at the archive's top or in its one folder")


def _unzip(content: bytes, folder: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ENTRIES:
                raise _refuse(f"more than {MAX_ENTRIES} entries")
            if sum(entry.file_size for entry in entries) > MAX_UNPACKED:
                raise _refuse(f"over {MAX_UNPACKED} bytes unpacked")
            for entry in entries:
                path = _safe(entry.filename)
                if (entry.external_attr >> 16) & 0o170000 == 0o120000:
                    raise _refuse(f"a link: {entry.filename!r}")
                target = folder.joinpath(*path.parts)
                if entry.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                data = archive.read(entry)
                if len(data) > entry.file_size:
                    raise _refuse(f"{entry.filename!r} is larger than it says")
                target.write_bytes(data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError) as error:
        raise _refuse(f"not a readable zip archive: {error}") from None


def _untar(content: bytes, folder: Path) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:*") as archive:
            members = []
            total = 0
            for number, member in enumerate(archive):
                if number >= MAX_ENTRIES:
                    raise _refuse(f"more than {MAX_ENTRIES} entries")
                _safe(member.name)
                if not (member.isfile() or member.isdir()):
                    raise _refuse(f"not a file or folder: {member.name!r}")
                total += member.size
                if total > MAX_UNPACKED:
                    raise _refuse(f"over {MAX_UNPACKED} bytes unpacked")
                members.append(member)
            archive.extractall(folder, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise _refuse(f"not a zip or tar archive of a campaign folder: {error}") from None
