"""Lay the package out as Python sees it once installed, for tools that read source trees.

pyproject.toml maps the top-level folders onto one package (``core/`` is
``partnercast.core``, ``app/`` is ``partnercast`` itself). The type checker and
import-linter find modules by walking folders, so they are pointed at a tree of symbolic
links laid out as the installed package: ``<dest>/partnercast/core -> ../../core`` and so
on. Run ``python tools/package_tree.py DEST`` to make one; ``tools/check.sh`` does.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    """Each mapped package and the repository folder it comes from, from pyproject.toml."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    mapping = config["tool"]["setuptools"]["package-dir"]
    return {package: REPO / folder for package, folder in mapping.items()}


def build(dest: Path) -> Path:
    """Make (or refresh) ``dest/partnercast``; returns ``dest``."""
    dirs = package_dirs()
    root = dest / "partnercast"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.iterdir():  # links to files that moved or went away since last time
        if stale.is_symlink() and not stale.exists():
            stale.unlink()
    for entry in dirs["partnercast"].iterdir():  # the package's own files (app/)
        link = root / entry.name
        if entry.suffix == ".py" or entry.name == "py.typed":
            _link(link, entry)
    for package, folder in dirs.items():
        if package == "partnercast":
            continue
        _link(dest / package.replace(".", "/"), folder)
    return dest


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == target.resolve():
            return
        link.unlink()
    link.symlink_to(target)


if __name__ == "__main__":
    print(build(Path(sys.argv[1]).resolve()))
