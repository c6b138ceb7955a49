"""The page templates ship in the wheel: a non-editable install (as CI's) renders pages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = {
    "partnercast/web/templates/page.html",
    "partnercast/web/templates/unsubscribe.html",
    "partnercast/web/templates/partner/page.html",
    "partnercast/web/templates/partner/style.css",
    "partnercast/channels/microsite/templates/shell.html",
    "partnercast/channels/microsite/templates/form.html",
    "partnercast/channels/microsite/templates/site.css",
    "partnercast/web/templates/shell/base.html",
    "partnercast/web/static/portal.css",
    "partnercast/web/locales/de/LC_MESSAGES/shell.po",
    "partnercast/web/locales/fr/LC_MESSAGES/pages.po",
    "partnercast/channels/microsite/locales/fr/LC_MESSAGES/pages.po",
}
RENDER = """
from partnercast.channels.microsite import pages
from partnercast.web import partner_template, templating
assert partner_template.__file__.startswith(sys.argv[1]), partner_template.__file__
print(templating.render("unsubscribe.html", title="Unsubscribe", token="T", sender=None))
print(templating.render("unsubscribe.html", title="-", token="T", sender=None, locale="fr"))
from partnercast.channels.microsite.texts import texts
print(texts("de")["submit"], texts("fr")["submit"])
print(pages.site_css({}))
print(partner_template.csp())
"""


def test_the_wheel_carries_the_templates_and_they_render(tmp_path: Path) -> None:
    # A copy of the sources: the build writes build/ and egg-info beside what it builds.
    source = tmp_path / "source"
    skip = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.db")
    shutil.copytree(REPO, source, ignore=skip)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    [wheel] = tmp_path.glob("partnercast-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert names >= TEMPLATES, sorted(TEMPLATES - names)
        archive.extractall(tmp_path / "installed")
    installed = str(tmp_path / "installed")
    code = f"import sys; sys.path.insert(0, {installed!r})\n" + RENDER
    done = subprocess.run(
        [sys.executable, "-c", code, installed],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert 'action="/u/T"' in done.stdout
    assert "Se désabonner" in done.stdout  # the catalogues ship too
    assert "Senden Envoyer" in done.stdout
    assert "--pc-primary:#1f4e79" in done.stdout
    assert "style-src 'sha256-" in done.stdout
