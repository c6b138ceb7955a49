"""The table of user mistakes: each is one line saying what and where, never a traceback,
and leaves the database as it was.

Every case runs the real ``partnercast`` command (in-process, as tests/conftest.py's
``cli`` does) on a copy of one small world built through the CLI itself: a tenant, the
sample segments, partners and contacts, the sample campaign loaded and enrolled, a cycle
started. A case gives the arguments, the exit code, and what the error must say; the test
checks that no exception escaped (a traceback), that a runtime error is exactly one
``error:`` line (a list of problems starts with one), that a usage error is one
``error:`` line naming the option and at most a second one naming the help to read,
and that the database file dumps the same before and after (no half-written rows).
"""

# ruff: noqa: E501  (the table keeps one case a line)
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli_world import CAMPAIGN, EXAMPLES, cli_world, dump, run

from partnercast.core.yamlfile import MAX_YAML_BYTES
from partnercast.tenants.csvfile import MAX_IMPORT_BYTES

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)
DEEP = "segments: " + "[" * 5000 + "]" * 5000 + "\n"
LEADS_HEADER = "partner,stage,email,deal_value,occurred_at,lead_id\n"
PARTNERS_HEADER = (EXAMPLES / "tenants" / "partners.csv").read_text().splitlines()[0]
TRICKY_NAME = "Evil [/] [link=https://evil.example]click[/link] \x1b[31mRED\x1b[0m [bold]"


def partner_row(external_id: str, name: str) -> str:
    return (
        f'{external_id},"{name}",gold,EMEA,de;en,x,50,Europe/Berlin,L GmbH,"Street 1",'
        ",#0b3d91,#f2a900,Sig,Sender,s@x.example,Kat,k@x.example,active"
    )


@dataclass
class Place:
    """The world's database and a folder of bad inputs."""

    database: Path
    files: Path


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    """The world, built once through the CLI; each case works on a copy."""
    folder = tmp_path_factory.mktemp("mistakes")
    with cli_world(folder) as database:
        yield Place(database, _bad_files(folder / "bad"))


def _bad_files(folder: Path) -> Path:
    folder.mkdir()
    (folder / "bomb.yaml").write_text(BILLION_LAUGHS)
    (folder / "deep.yaml").write_text(DEEP)
    (folder / "nul.yaml").write_text("segments:\n  a\x00b: {}\n")
    (folder / "big.yaml").write_text("# a comment\n" * 100_000)
    (folder / "values-deep.yaml").write_text("headline: " + "[" * 5000 + "]" * 5000 + "\n")
    (folder / "values-alias.yaml").write_text("x: &x hi\nheadline: *x\n")
    (folder / "a-file").write_text("not a folder\n")
    os.mkfifo(folder / "pipe.csv")  # opened for reading, it would wait for a writer
    with (folder / "huge.csv").open("wb") as sparse:  # its size, not its bytes, on disk
        sparse.truncate(MAX_IMPORT_BYTES + 1)
    (folder / "huge.yaml").write_bytes(b"#" * (MAX_YAML_BYTES + 1))
    (folder / "huge-deals.csv").write_text(
        LEADS_HEADER + "P1001,won,a@b.example,1e308,,\nP1001,won,c@b.example,1e308,,\n"
    )
    (folder / "nan-deal.csv").write_text(LEADS_HEADER + "P1001,won,a@b.example,nan,,\n")
    (folder / "year-9999.csv").write_text(
        LEADS_HEADER + "P1001,won,a@b.example,10,9999-12-31T23:59,\n"
    )
    (folder / "year-1.csv").write_text(LEADS_HEADER + "P1001,won,a@b.example,10,0001-01-01,\n")
    (folder / "huge-lead-id.csv").write_text(LEADS_HEADER + "P1001,won,,10,,99999999999999999999\n")
    (folder / "tricky-partner.csv").write_text(
        PARTNERS_HEADER + "\n" + partner_row("P9001", TRICKY_NAME) + "\n"
    )
    zero = folder / "campaign-zero"
    shutil.copytree(CAMPAIGN, zero)
    (zero / "campaign.yaml").unlink()
    (zero / "campaign.yaml").symlink_to("/dev/zero")
    piped = folder / "campaign-pipe"  # a template that is a named pipe
    shutil.copytree(CAMPAIGN, piped)
    (piped / "templates" / "email" / "intro.en.mjml").unlink()
    os.mkfifo(piped / "templates" / "email" / "intro.en.mjml")
    for name, mutate in {
        "campaign-deep": lambda text: text + "\nextra: " + "[" * 5000 + "]" * 5000 + "\n",
        "campaign-nul": lambda text: text + '\nextra: "a\x00b"\n',
        "campaign-alias": lambda text: "x: &x [1, 2]\n" + text + "\ny: *x\n",
    }.items():
        copy = folder / name
        shutil.copytree(CAMPAIGN, copy)
        spec = copy / "campaign.yaml"
        spec.write_text(mutate(spec.read_text(encoding="utf-8")), encoding="utf-8")
    return folder


@dataclass(frozen=True)
class Case:
    """A command with a bad input, its exit code and what its error must say."""

    args: tuple[str, ...]
    code: int
    says: str
    absent: str = ""  # what the output must not show (a secret)

    @property
    def id(self) -> str:
        return " ".join(self.args)[:80]


T = ("--tenant", "northwind")
BIG = "99999999999999999999"
DATES = "must be between 1970-01-01 and 2199-12-31"
CASES = [
    # Dates out of range: --now, cycle dates, due dates, CSV dates.
    Case(("tick", "--now", "9999-12-31T23:59"), 1, f"--now: '9999-12-31T23:59' {DATES}"),
    Case(("tick", "--now", "0001-01-01"), 1, f"--now: '0001-01-01' {DATES}"),
    Case(("status", "--now", "0001-01-01"), 1, f"--now: '0001-01-01' {DATES}"),
    Case(("queue", "--now", "9999-12-31"), 1, f"--now: '9999-12-31' {DATES}"),
    Case(("worker", "--once", "--now", "9999-12-31T23:59:59"), 1, f"--now: '9999-12-31T23:59:59' {DATES}"),
    Case(("cycle", "start", "cloud-security", *T, "--at", "9999-12-31"), 1, f"--at: '9999-12-31' {DATES}"),
    Case(("cycle", "start", "cloud-security", *T, "--at", "0001-01-01"), 1, f"--at: '0001-01-01' {DATES}"),
    Case(("schedule", "cloud-security", *T, "--start", "9999-12-31"), 1, f"--start: '9999-12-31' {DATES}"),
    Case(("tasks", "add", "P1001", *T, "--kind", "call", "--due", "9999-12-31"), 1, f"--due: '9999-12-31' {DATES}"),
    Case(("tasks", *T, "--now", "0001-01-01T00:00+05:00"), 1, DATES),
    Case(("leads", "import", "{bad}/year-9999.csv", *T), 1, f"occurred_at '9999-12-31T23:59' {DATES}"),
    Case(("leads", "import", "{bad}/year-1.csv", *T), 1, f"occurred_at '0001-01-01' {DATES}"),
    # Numbers too large for the database, or not finite.
    Case(("contacts", "list", "P1001", *T, "--limit", BIG), 2, "error: invalid value for '--limit'"),
    Case(("tasks", "show", BIG, *T), 2, "error: invalid value for 'task_id'"),
    Case(("tasks", "close", BIG, *T), 2, "error: invalid value for 'task_id'"),
    Case(("concierges", "settings", *T, "--cap", BIG), 2, "error: invalid value for '--cap'"),
    Case(("concierges", "settings", *T, "--bounce-threshold", "nan"), 2, "error: invalid value for '--bounce-threshold'"),
    Case(("concierges", "settings", *T, "--review-days", "2147483647"), 1, "review_interval_days: review_interval_days must be from 1 to 3,650"),
    Case(("concierges", "settings", *T, "--lead-hours", "2147483647"), 1, "lead_followup_hours must be from 1 to 87,600"),
    Case(("concierges", "settings", *T, "--bounce-threshold", "1.5"), 1, "bounce_rate_threshold must be a rate above 0 and below 1"),
    Case(("worker", "--once", "--batch", BIG), 2, "error: invalid value for '--batch'"),
    Case(("worker", "--interval", "1e308"), 2, "error: invalid value for '--interval'"),
    Case(("serve", "--port", "70000"), 2, "error: invalid value for '--port': Input should be less than or equal to 65535"),
    # Usage errors: one line, then where to read the help.
    Case(("tasks", "show", *T, "--bogus"), 2, "error: no such option: --bogus"),
    Case(("tasks", "show", *T), 2, "error: missing argument 'task_id'"),
    Case(("--bogus",), 2, "error: no such option: --bogus"),
    Case(("no-such-command",), 2, "error: no such command 'no-such-command'"),
    Case(("serve", "--port"), 2, "error: option '--port' requires an argument"),
    Case(("partners", "link", "P1001", *T, "--days", BIG), 2, "error: invalid value for '--days'"),
    Case(("schedule", "cloud-security", *T, "--cycle", BIG), 2, "error: invalid value for '--cycle'"),
    # Amounts: bounded, finite, spend at least a cent.
    Case(("spend", "add", "P1001", "cloud-security", "1e308", *T), 2, "error: invalid value for 'amount'"),
    Case(("spend", "add", "P1001", "cloud-security", "inf", *T), 2, "error: invalid value for 'amount'"),
    Case(("spend", "add", "P1001", "cloud-security", "1e-300", *T), 1, "AMOUNT: 1e-300 must be at least 0.01"),
    Case(("leads", "import", "{bad}/huge-deals.csv", *T), 1, "deal_value '1e308' must be at most 1,000,000,000,000"),
    Case(("leads", "import", "{bad}/nan-deal.csv", *T), 1, "deal_value 'nan' must be a finite number"),
    Case(("leads", "import", "{bad}/huge-lead-id.csv", *T), 1, f"lead_id '{BIG}' must be at most 2147483647"),
    # Output paths that are files.
    Case(("report", *T, "--out", "{bad}/a-file"), 1, "--out: {bad}/a-file is a file, not a folder"),
    Case(("report", *T, "--out", "{bad}/a-file/below"), 1, "--out: {bad}/a-file/below is a file, not a folder"),
    Case(("demo", "--folder", "{bad}/a-file"), 1, "--folder: {bad}/a-file is a file, not a folder"),
    # YAML: alias bombs, nesting, NUL bytes, size.
    Case(("segments", "load", "{bad}/bomb.yaml", *T), 1, "bomb.yaml:2: not valid YAML: aliases (*name) are not allowed"),
    Case(("segments", "load", "{bad}/deep.yaml", *T), 1, "deep.yaml:1: not valid YAML: nested deeper than 64 levels"),
    Case(("segments", "load", "{bad}/nul.yaml", *T), 1, "nul.yaml: line 2: contains a NUL byte"),
    Case(("segments", "load", "{bad}/big.yaml", *T), 1, "not valid YAML: longer than 1,000,000 characters"),
    Case(("campaign", "validate", "{bad}/campaign-deep"), 1, "invalid YAML: nested deeper than 64 levels"),
    Case(("campaign", "validate", "{bad}/campaign-nul"), 1, "invalid YAML: unacceptable character #x0000"),
    Case(("campaign", "validate", "{bad}/campaign-alias"), 1, "aliases (*name) are not allowed"),
    Case(("campaign", "validate", "{bad}/campaign-zero"), 1, "campaign-zero: no campaign.yaml in the campaign folder"),  # a link to /dev/zero
    Case(("campaign", "validate", "{bad}/campaign-pipe"), 1, "templates/email/intro.en.mjml: not a regular file (a device, a pipe or a socket)"),
    Case(("campaign", "load", "{bad}/campaign-deep", *T), 1, "invalid YAML: nested deeper than 64 levels"),
    Case(("customise", "cloud-security", "P1001", *T, "--file", "{bad}/values-deep.yaml"), 1, "nested deeper than 64 levels"),
    Case(("customise", "cloud-security", "P1001", *T, "--file", "{bad}/values-alias.yaml"), 1, "values-alias.yaml:2: not valid YAML: aliases (*name) are not allowed"),
    Case(("customise", "cloud-security", "P1001", *T, "--file", "{bad}/nul.yaml"), 1, "nul.yaml:2: not valid YAML: contains a NUL byte"),
    # Files that read for ever or fill the memory: a device, a pipe, a huge file.
    Case(("segments", "load", "/dev/zero", *T), 1, "/dev/zero: not a regular file (a device, a pipe or a socket)"),
    Case(("partners", "import", "/dev/zero", *T), 1, "/dev/zero: not a regular file (a device, a pipe or a socket)"),
    Case(("leads", "import", "{bad}/pipe.csv", *T), 1, "pipe.csv: not a regular file"),
    Case(("customise", "cloud-security", "P1001", *T, "--file", "/dev/zero"), 1, "/dev/zero: not a regular file"),
    Case(("partners", "import", "{bad}/huge.csv", *T), 1, f"huge.csv: larger than {MAX_IMPORT_BYTES:,} bytes"),
    Case(("segments", "load", "{bad}/huge.yaml", *T), 1, f"huge.yaml: larger than {MAX_YAML_BYTES:,} bytes"),
    Case(("partners", "import", "{bad}", *T), 1, "is a directory, not a file"),
    # A secret typed where key=value was expected is not echoed.
    Case(("accounts", "connect", "P1001", "x", *T, "--set", "s3cr3t-TOKEN"), 1, "--set number 1: expected key=value", absent="s3cr3t"),
    Case(("accounts", "connect", "P1001", "x", *T, "--set", "=s3cr3t-TOKEN"), 1, "--set number 1: expected key=value", absent="s3cr3t"),
    # Rich markup in what the user typed is text, in an error line too.
    Case(("tenants", "create", "[/]", "--name", "[/]", "--legal-name", "x", "--postal-address", "y"), 1, "slug '[/]' must be"),
    Case(("partners", "show", "[/][link=https://evil.example]x", *T), 1, "[/][link=https://evil.example]x"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_mistake_is_one_line_and_changes_nothing(
    case: Case, place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "world.db"
    shutil.copy(place.database, database)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("COLUMNS", "200")  # an error line is not wrapped
    monkeypatch.chdir(tmp_path)
    before = dump(database)
    args = [arg.replace("{bad}", str(place.files)) for arg in case.args]
    result = run(*args)
    says = case.says.replace("{bad}", str(place.files))
    shown = result.output + (result.stderr or "")
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"a traceback: {result.exception!r}\n{shown}"
    )
    assert "Traceback" not in shown
    assert result.exit_code == case.code, shown
    if case.code == 1:
        lines = result.stderr.strip().splitlines()
        assert lines and lines[0].startswith("error: "), shown
        assert len(lines) == 1 or "problem" in lines[0] or "rejected" in shown, shown
        assert says in result.stderr or says in result.output, shown
    else:  # a usage error: one line, then at most one saying which help to read
        lines = result.stderr.strip().splitlines()
        assert lines[0] == says or lines[0].startswith(says), shown
        assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("try '")), shown
        assert "Usage:" not in shown and "╭" not in shown, shown
    if case.absent:
        assert case.absent not in shown
    assert "\x1b" not in result.stdout  # no escape reaches the terminal (none is one here)
    assert dump(database) == before, "the database changed"


def test_markup_and_escapes_in_a_partners_name_are_shown_as_text(
    place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[/]`, `[link=...]` and a raw ANSI escape in a name: enrollments and partners list
    print the name as written (the escape character dropped), no crash, no hyperlink."""
    database = tmp_path / "world.db"
    shutil.copy(place.database, database)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", f"sqlite:///{database}")
    csv = str(place.files / "tricky-partner.csv")
    assert run("partners", "import", csv, *T).exit_code == 0
    assert run("enroll", "cloud-security", *T, "--now", "2026-11-21T09:00").exit_code == 0
    for args in (
        ("enrollments", "cloud-security", *T),
        ("partners", "list", *T),
        ("partners", "show", "P9001", *T),
        ("status", "cloud-security", *T, "--now", "2026-12-02T09:00"),
    ):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
        assert "Evil [/]" in result.stdout, result.stdout  # text, not a closing tag
        assert "[link=" in result.stdout.replace("\n", "")  # not a terminal hyperlink
        assert "\x1b" not in result.stdout and "\x1b]8;" not in result.stdout


def test_markup_in_a_customised_subject_previews(
    place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """preview printed the subject as markup: `[/]` in the partner's headline crashed it."""
    database = tmp_path / "world.db"
    shutil.copy(place.database, database)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", f"sqlite:///{database}")
    headline = "headline=[/] Cloud [link=https://evil.example]safe[/link]"
    result = run("customise", "cloud-security", "P1001", *T, "--set", headline)
    assert result.exit_code == 0, result.output
    out = tmp_path / "intro.html"
    result = run("preview", "cloud-security", "P1001", *T, "--touch", "intro", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "[/] Cloud [link=https://evil.example]safe[/link]" in result.stdout
    assert out.exists()


def test_roi_and_rates_are_never_inf_or_nan() -> None:
    """Rows stored before amounts were bounded can still hold any float: what metrics and
    reports show of them is n/a (None), never inf or NaN."""
    from partnercast.funnel.metrics import FunnelRow

    row = FunnelRow("P1", "P1", pipeline=1e308 * 10, won_value=float("nan"), spend=1e-300)
    assert row.roi_pipeline is None and row.roi_won is None
    assert not row.meets_target
    bounded = FunnelRow("P1", "P1", pipeline=2_000.0, won_value=0.0, spend=100.0)
    assert bounded.roi_pipeline == 20.0 and bounded.meets_target
