"""Reading a file a user names, within a bound.

``path.read_bytes()`` on ``/dev/zero``, a named pipe or a multi-gigabyte file reads for
ever or fills the memory. :func:`read_bounded` reads only a regular file, and at most
``limit`` bytes of it; anything else is a :class:`UserError` naming the file, in one line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from partnercast.core.errors import UserError


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; a UserError
    (where: the path) for a missing file, a folder, a device or pipe, an unreadable file or
    one larger than ``limit`` bytes."""
    where = str(path)
    try:
        # stat before opening: opening a named pipe for reading blocks until a writer comes.
        if os.path.isdir(path):
            raise UserError("is a directory, not a file", where=where)
        found = path.stat()
        if not stat.S_ISREG(found.st_mode):
            raise UserError("not a regular file (a device, a pipe or a socket)", where=where)
        if found.st_size > limit:
            raise UserError(f"larger than {limit:,} bytes", where=where)
        with path.open("rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):  # replaced meanwhile
                raise UserError("not a regular file (a device, a pipe or a socket)", where=where)
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise UserError("no such file", where=where) from None
    except IsADirectoryError:
        raise UserError("is a directory, not a file", where=where) from None
    except OSError as error:
        raise UserError(f"cannot read: {error.strerror}", where=where) from None
    if len(data) > limit:
        raise UserError(f"larger than {limit:,} bytes", where=where)
    return data
