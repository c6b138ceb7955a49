"""The dashboard speaks English, German and French: every message its templates and
modules use has a German and a French translation in the ``dashboard`` catalogues."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "web"
METHODS = [
    ("dashboard*.py", "python"),
    ("templates/dashboard/**.html", "jinja2"),
]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def _used() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, keywords=KEYWORDS, options_map={}
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", ["de", "fr"])
def test_every_dashboard_message_is_translated(language: str) -> None:
    with (WEB / "locales" / language / "LC_MESSAGES" / "dashboard.po").open("rb") as handle:
        catalogue = read_po(handle, locale=language)
    used = _used()
    assert len(used) > 100
    missing = sorted(
        message
        for message in used
        if message not in catalogue
        or not all(
            catalogue[message].string
            if isinstance(catalogue[message].string, tuple)
            else [catalogue[message].string]
        )
    )
    assert missing == []


def test_the_catalogue_tool_checks_the_dashboard_domain(monkeypatch) -> None:
    """tools/catalogues.py (update|check) extracts the dashboard's texts like the shell's
    and checks each has a translation with the same placeholders."""
    import importlib.util
    import sys

    path = WEB.parent / "tools" / "catalogues.py"
    spec = importlib.util.spec_from_file_location("catalogues_tool", path)
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, tool)  # its dataclasses look themselves up
    spec.loader.exec_module(tool)
    (dashboard,) = [d for d in tool.DOMAINS if d.name == "dashboard"]
    assert len(tool.extract(dashboard)) > 100
    assert tool.problems(dashboard) == []
