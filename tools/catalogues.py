"""The web's message catalogues: extract the English texts of each domain from its
templates and code, merge them into ``<folder>/<lang>/LC_MESSAGES/<domain>.po``, and check
that every text has a translation.

    python tools/catalogues.py update   # new texts land in every .po with an empty msgstr
    python tools/catalogues.py check    # exit 1 listing texts without a translation

Jinja templates are read for ``_("...")``/``gettext``/``ngettext``; Python files for
``_``, ``N_`` (a marker for texts translated later, e.g. a table of labels),
``gettext`` and ``ngettext``. A domain's owner adds its sources to :data:`DOMAINS`.
Translators edit the .po files (``msgstr``); the engine reads them directly
(``partnercast.plugins.catalogues``), there is nothing to compile.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

REPO = Path(__file__).resolve().parent.parent
WEB_LOCALES = REPO / "web" / "locales"
LANGUAGES = ("de", "fr")
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


@dataclass(frozen=True)
class Domain:
    name: str
    folder: Path  # where <lang>/LC_MESSAGES/<name>.po live
    sources: tuple[str, ...]  # globs under the repository


DOMAINS = (
    Domain(
        "shell",
        WEB_LOCALES,
        (
            "web/templates/shell/*.html",
            "web/link_mail.py",
            "web/signin.py",
        ),
    ),
    Domain(
        "dashboard",
        WEB_LOCALES,
        (
            "web/templates/dashboard/*.html",
            "web/dashboard*.py",
        ),
    ),
    Domain(
        "pages",
        WEB_LOCALES,
        (
            "web/templates/*.html",
            "web/unsubscribe.py",
            "web/app.py",
        ),
    ),
    Domain(
        "pages",
        REPO / "channels" / "microsite" / "locales",
        ("channels/microsite/texts.py",),
    ),
)


def _method(path: Path) -> str:
    return "jinja2.ext:babel_extract" if path.suffix == ".html" else "python"


def extract(domain: Domain) -> Catalog:
    """Every text of the domain's sources (the template of its catalogues)."""
    template = Catalog(domain=domain.name, project="partnercast", fuzzy=False)
    for pattern in domain.sources:
        for path in sorted(REPO.glob(pattern)):
            options = {"extensions": "jinja2.ext.do"} if path.suffix == ".html" else {}
            for line, message, comments, context in extract_from_file(
                _method(path), str(path), keywords=KEYWORDS, options=options
            ):
                template.add(
                    message,
                    locations=[(str(path.relative_to(REPO)), line)],
                    auto_comments=comments,
                    context=context,
                    flags=("python-format",) if _has_percent(message) else (),
                )
    return template


def _has_percent(message: str | tuple[str, ...]) -> bool:
    texts = message if isinstance(message, tuple) else (message,)
    return any("%(" in text for text in texts)


def po_path(domain: Domain, language: str) -> Path:
    return domain.folder / language / "LC_MESSAGES" / f"{domain.name}.po"


def update(domain: Domain) -> None:
    template = extract(domain)
    for language in LANGUAGES:
        path = po_path(domain, language)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language, domain=domain.name)
        else:
            catalog = Catalog(locale=language, domain=domain.name, project="partnercast")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, sort_output=False)


PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}")


def problems(domain: Domain) -> list[str]:
    """Texts of the domain without a translation (or with other placeholders)."""
    found: list[str] = []
    template = extract(domain)
    for language in LANGUAGES:
        path = po_path(domain, language)
        if not path.exists():
            found.append(f"{path.relative_to(REPO)}: missing")
            continue
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language, domain=domain.name)
        for message in template:
            if not message.id:
                continue
            translated = catalog.get(message.id)
            where = f"{path.relative_to(REPO)}: {message.id!r}"
            if translated is None or not translated.string or translated.fuzzy:
                found.append(f"{where}: no translation")
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = (
                translated.string if isinstance(translated.string, tuple) else (translated.string,)
            )
            wanted = set(PLACEHOLDER.findall(" ".join(ids)))
            if any(set(PLACEHOLDER.findall(text)) != wanted for text in strings if text):
                found.append(f"{where}: placeholders differ")
    return found


def main(arguments: list[str]) -> int:
    command = arguments[0] if arguments else "check"
    if command == "update":
        for domain in DOMAINS:
            update(domain)
        return 0
    if command == "check":
        found = [problem for domain in DOMAINS for problem in problems(domain)]
        for problem in found:
            print(problem)
        return 1 if found else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
