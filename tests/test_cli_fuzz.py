"""The CLI fed generated inputs (hypothesis): command-line arguments, CSV files and
campaign folders. Whatever it is given, a command raises nothing (no traceback), exits 0,
1 or 2 (a usage error: one ``error:`` line and at most a pointer to the help), and a
command that fails leaves the database as it was (no half-written rows).

Each example runs the real command in-process on a copy of one world built through the
CLI (tests/support/cli_world.py). The example counts are kept small (20 each, the same
examples every run) so that the three tests take about a minute on a loaded 2-core
machine; PARTNERCAST_FUZZ_EXAMPLES=500 searches longer, with new examples each run.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.cli_world import CAMPAIGN, EXAMPLES, TENANT, cli_world, dump, run

LONGER = os.environ.get("PARTNERCAST_FUZZ_EXAMPLES")
"""Set it (e.g. 500) to search longer, with new random examples each run."""
FUZZ = settings(
    max_examples=int(LONGER or 20),
    deadline=None,
    derandomize=not LONGER,  # CI: the same examples every run, so a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NASTY = [
    "99999999999999999999", "-99999999999999999999", "2147483648", "-1", "0", "nan", "inf",
    "-inf", "1e308", "1e-300", "9999-12-31", "0001-01-01", "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00+05:00", "2026-13-45", "[/]", "[link=https://evil.example]x[/link]",
    "\x1b[31mred\x1b[0m", "\x00", "", " ", "=cmd|' /C calc'!A0", "a" * 300, "P1001",
    "cloud-security", "intro", "2026-12-01T09:00", "en", "de", "x", "email", "{{ 1/0 }}",
]  # fmt: skip
value = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers().map(str),
    st.floats().map(repr),
    st.datetimes().map(lambda moment: moment.isoformat()),
)

T = TENANT
COMMANDS: list[Any] = [
    lambda v: ("queue", "--now", v[0]),
    lambda v: ("status", "--now", v[0]),
    lambda v: ("partners", "show", v[0], *T),
    lambda v: ("partners", "link", v[0], *T, "--days", v[1], "--now", v[2]),
    lambda v: ("contacts", "list", v[0], *T, "--limit", v[1]),
    lambda v: ("tasks", "show", v[0], *T),
    lambda v: ("tasks", "add", v[0], *T, "--kind", v[1], "--due", v[2]),
    lambda v: ("tasks", *T, "--status", v[0], "--now", v[1]),
    lambda v: ("spend", "add", v[0], "cloud-security", v[1], *T),
    lambda v: ("spend", "add", "P1001", v[0], v[1], *T, "--kind", v[2]),
    lambda v: ("cycle", "start", v[0], *T, "--at", v[1]),
    lambda v: ("customise", "cloud-security", v[0], *T, "--set", f"{v[1]}={v[2]}"),
    lambda v: ("customise", "cloud-security", "P1001", *T, "--set", v[0], "--locale", v[1]),
    lambda v: ("approve", v[0], v[1], *T, "--reason", "fuzz", "--now", v[2]),
    lambda v: ("enrollments", v[0], *T),
    lambda v: ("metrics", *T, "--by", v[0]),
    lambda v: ("score", *T),
    lambda v: ("concierges", "settings", *T, "--cap", v[0], "--bounce-threshold", v[1]),
    lambda v: ("concierges", "add", v[0], *T, "--languages", v[1]),
    lambda v: ("review", v[0], *T, "--now", v[1]),
    lambda v: ("schedule", v[0], *T, "--start", v[1]),
    lambda v: ("accounts", "connect", "P1001", v[0], *T, "--set", v[1]),
    lambda v: ("tenants", "create", v[0], "--name", v[1], "--legal-name", v[2],
               "--postal-address", "1 Main St"),
    lambda v: ("tenants", "set", "northwind", "--delivery-guarantee", v[0]),
    lambda v: ("leads", *T),
    lambda v: ("users", "add", v[0], "--role", v[1], *T, "--partner", v[2]),
    lambda v: ("users", "add", v[0], "--role", "concierge", *T, "--concierge", v[1]),
    lambda v: ("users", "remove", v[0], *T, "--partner", v[1]),
    lambda v: ("partners", "invite", v[0], *T, "--now", v[1]),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with cli_world(tmp_path_factory.mktemp("fuzz")) as database:
        yield database


class Attempt:
    """A copy of the world for one example; :meth:`run` checks the invariants."""

    def __init__(self, world: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.database = folder / "world.db"
        shutil.copy(world, self.database)
        monkeypatch.setenv("PARTNERCAST_DATABASE_URL", f"sqlite:///{self.database}")
        monkeypatch.chdir(folder)

    def run(self, *args: str) -> int:
        before = dump(self.database)
        result = run(*args)
        shown = result.output + (result.stderr or "")
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"partnercast {args!r} raised {result.exception!r}\n{shown}"
        )
        assert "Traceback" not in shown, shown
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, shown)
        assert "\x1b" not in result.stdout, (args, result.stdout)
        if result.exit_code == 2:  # a usage error: one line, at most one more for the help
            lines = result.stderr.strip().splitlines()
            assert lines and lines[0].startswith("error: "), (args, result.stderr)
            assert len(lines) <= 2, (args, result.stderr)
        if result.exit_code != 0:
            assert dump(self.database) == before, f"partnercast {args!r} failed and wrote"
        return result.exit_code


@FUZZ
@given(command=st.sampled_from(COMMANDS), values=st.lists(value, min_size=3, max_size=3))
def test_any_command_line_is_an_answer_or_one_error(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: Any, values: list[str]
) -> None:
    Attempt(world, tmp_path / "example", monkeypatch).run(*command(values))


PARTNER_COLUMNS = (EXAMPLES / "tenants" / "partners.csv").read_text().splitlines()[0].split(",")
CONTACT_COLUMNS = (EXAMPLES / "tenants" / "contacts.csv").read_text().splitlines()[0].split(",")
LEAD_COLUMNS = ["partner", "stage", "email", "crm_id", "lead_id", "deal_value", "occurred_at"]
IMPORTS = {
    "partners": (PARTNER_COLUMNS, lambda path: ("partners", "import", path, *T)),
    "contacts": (CONTACT_COLUMNS, lambda path: ("contacts", "import", "P1001", path, *T)),
    "leads": (LEAD_COLUMNS, lambda path: ("leads", "import", path, *T)),
}
cell = st.one_of(value, st.sampled_from(["gold", "EMEA", "yes", "won", "a@b.example", "de"]))


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(sorted(IMPORTS)))
    columns = list(IMPORTS[kind][0])
    if draw(st.booleans()):  # a column missing, or one the engine does not know
        columns = draw(st.permutations(columns))[: draw(st.integers(1, len(columns)))]
        columns += draw(st.lists(st.sampled_from(["", "extra", "\x00", "[/]"]), max_size=1))
    rows = draw(st.lists(st.lists(cell, min_size=len(columns), max_size=len(columns)), max_size=4))
    text = io.StringIO()
    csv.writer(text).writerows([columns, *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    data = text.getvalue().encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))  # not text at all
    return kind, data


@FUZZ
@given(file=csv_files())
def test_any_csv_import_is_an_answer_or_one_error(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: tuple[str, bytes]
) -> None:
    kind, data = file
    attempt = Attempt(world, tmp_path / "example", monkeypatch)
    path = attempt.folder / f"{kind}.csv"
    path.write_bytes(data)
    attempt.run(*IMPORTS[kind][1](str(path)))


SPEC = yaml.safe_load((CAMPAIGN / "campaign.yaml").read_text(encoding="utf-8"))
TEMPLATES = sorted(p.relative_to(CAMPAIGN) for p in CAMPAIGN.rglob("*") if p.is_file())
yaml_value = st.recursive(
    st.one_of(value, st.integers(), st.floats(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(NASTY[:12]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into the campaign.yaml data."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, inner in data.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(data, list):
        for index, inner in enumerate(data):
            found += _paths(inner, (*prefix, index))
    return found


SPEC_PATHS = _paths(SPEC)


def _replaced(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replaced(data[path[0]], path[1:], new)
    return copy


@FUZZ
@given(
    path=st.sampled_from(SPEC_PATHS),
    new=yaml_value,
    template=st.sampled_from(TEMPLATES),
    junk=st.one_of(st.none(), st.text(max_size=60), st.sampled_from(["{% if %}", "{{ x", "<mj"])),
)
def test_any_campaign_folder_validates_or_says_why(
    world: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: tuple[Any, ...],
    new: Any,
    template: Path,
    junk: str | None,
) -> None:
    attempt = Attempt(world, tmp_path / "example", monkeypatch)
    folder = attempt.folder / "campaign"
    shutil.copytree(CAMPAIGN, folder)
    spec = yaml.safe_dump(_replaced(SPEC, path, new), allow_unicode=True, sort_keys=False)
    (folder / "campaign.yaml").write_text(spec, encoding="utf-8")
    if junk is not None and template.name != "campaign.yaml":
        with (folder / template).open("a", encoding="utf-8") as file:
            file.write(junk)
    attempt.run("campaign", "validate", str(folder))
    attempt.run("campaign", "load", str(folder), *T, "--now", "2026-11-25T09:00")
