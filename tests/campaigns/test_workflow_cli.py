"""The workflow commands as a user runs them, including attempts to cross tenants."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import CAMPAIGN, World, build_world

from partnercast.campaigns.models import Enrollment
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink


@pytest.fixture
def two_worlds(engine: Engine, tmp_path: Path, sink: SmtpSink, monkeypatch) -> tuple[World, World]:
    """Two vendors with the same partner ids and names, the same campaign key, enrolled."""
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(sink.port))
    a = build_world(engine, tmp_path / "a", sink.port, slug="vendor-a")
    b = build_world(engine, tmp_path / "b", sink.port, slug="vendor-b")
    return a, b


def _state(world: World, external_id: str) -> str:
    from partnercast.campaigns.enrollment import find_enrollment

    with tenant_session(world.engine, world.tenant_id) as session:
        return find_enrollment(session, "cloud-security", external_id).state


def test_customise_submit_preview_approve_and_send(
    cli, two_worlds, sink: SmtpSink, tmp_path
) -> None:
    _a, b = two_worlds
    out = cli(
        "customise",
        "cloud-security",
        "P001",
        "--tenant",
        "vendor-a",
        "--locale",
        "de",
        "--set",
        "headline={{ first_name }}, Ihre Cloud in 45 Tagen sicher",
        "--submit",
    )
    assert "submitted" in out.stdout
    preview = tmp_path / "intro.html"
    shown = cli(
        "preview",
        "cloud-security",
        "P001",
        "--tenant",
        "vendor-a",
        "--touch",
        "intro",
        "--locale",
        "de",
        "-o",
        str(preview),
    )
    assert "Ihre Cloud in 45 Tagen sicher" in shown.stdout
    assert "Ihre Cloud in 45 Tagen sicher" in preview.read_text(encoding="utf-8")
    assert "problem" not in shown.stdout
    cli("approve", "cloud-security", "P001", "--tenant", "vendor-a", "--reason", "asked by phone")
    cli("cycle", "start", "cloud-security", "--tenant", "vendor-a", "--at", "2026-12-01T09:00")
    ticked = cli("tick", "--now", "2026-12-01T10:00")
    assert "messages sent" in ticked.stdout
    assert sink.received.count > 0
    status = cli("status", "cloud-security", "--tenant", "vendor-a")
    assert "P001" in status.stdout and "approved" in status.stdout
    assert _state(b, "P001") == "invited"  # B's twin partner is untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--set", "headline=" + "x" * 120],
            "too long (120 characters, at most 80)",
            id="too-long",
        ),
        pytest.param(
            ["--set", "headline={{ ''.__class__.__mro__ }}"],
            "template code is not allowed",
            id="template-code",
        ),
        pytest.param(
            ["--set", "legal=Our own legal text"], "'legal' is a locked zone", id="locked-zone"
        ),
        pytest.param(["--set", "call_to_action=Buy now"], "is not one of", id="not-a-choice"),
        pytest.param(["--set", "event_date=tomorrow"], "is not a date", id="bad-date"),
        pytest.param(["--set", "colour=red"], "not editable", id="unknown-field"),
        pytest.param(["--set", "headline"], "expected FIELD=VALUE", id="no-equals"),
    ],
)
def test_invalid_customisation_is_refused_with_field_and_reason(
    cli, two_worlds, args, message
) -> None:
    a, _ = two_worlds
    result = cli("customise", "cloud-security", "P002", "--tenant", "vendor-a", *args, expect=1)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _state(a, "P002") == "invited"  # nothing changed


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            ["approve", "cloud-security", "P001", "--reason", "x"], id="approve-before-submit"
        ),
        pytest.param(["approve", "cloud-security", "P001"], id="approve-without-reason"),
        pytest.param(
            ["preview", "cloud-security", "P001", "--touch", "nope", "-o", "x.html"],
            id="unknown-touch",
        ),
        pytest.param(
            [
                "preview",
                "cloud-security",
                "P001",
                "--touch",
                "intro",
                "--locale",
                "fr",
                "-o",
                "x.html",
            ],
            id="unknown-locale",
        ),
        pytest.param(
            ["customise", "cloud-security", "P999", "--set", "headline=x"], id="unknown-partner"
        ),
        pytest.param(
            ["customise", "no-such-campaign", "P001", "--set", "headline=x"], id="unknown-campaign"
        ),
        pytest.param(["cycle", "start", "cloud-security", "--at", "next tuesday"], id="bad-date"),
        pytest.param(["submit", "cloud-security", "P999"], id="submit-unknown-partner"),
    ],
)
def test_bad_command_lines_are_one_line_errors(cli, two_worlds, args) -> None:
    result = cli(*args, "--tenant", "vendor-a", expect=1)
    assert result.stderr.startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_auto_approval_approves_on_submit(cli, two_worlds) -> None:
    a, _ = two_worlds
    cli("auto-approve", "cloud-security", "P003", "--tenant", "vendor-a", "--on")
    result = cli("submit", "cloud-security", "P003", "--tenant", "vendor-a")
    assert "approved" in result.stdout
    assert _state(a, "P003") == "approved"


def test_tick_with_a_bad_instant_is_refused(cli, two_worlds) -> None:
    result = cli("tick", "--now", "yesterday-ish", expect=1)
    assert "--now" in result.stderr and "ISO" in result.stderr


def test_one_tenants_commands_never_reach_the_other(cli, two_worlds, sink: SmtpSink) -> None:
    a, b = two_worlds
    for external_id in ("P001", "P002"):
        cli(
            "customise",
            "cloud-security",
            external_id,
            "--tenant",
            "vendor-b",
            "--set",
            "signature_line=Team B",
            "--submit",
        )
        cli(
            "approve",
            "cloud-security",
            external_id,
            "--tenant",
            "vendor-b",
            "--reason",
            "asked by phone",
        )
    cli(
        "decline",
        "cloud-security",
        "P001",
        "--tenant",
        "vendor-a",
        "--note",
        "not now",
        "--reason",
        "x",
    )
    assert _state(b, "P001") == "approved" and _state(a, "P001") == "declined"
    listed = cli("enrollments", "cloud-security", "--tenant", "vendor-a").stdout
    assert listed.count("approved") == 0  # B's approvals never show up in A's list
    # A's cycle sends nothing: A's partners never approved, B's approvals are B's own.
    cli("cycle", "start", "cloud-security", "--tenant", "vendor-a", "--at", "2026-12-01T09:00")
    cli("tick", "--tenant", "vendor-a", "--now", "2026-12-20T10:00")
    assert sink.received.count == 0
    cli("cycle", "start", "cloud-security", "--tenant", "vendor-b", "--at", "2026-12-01T09:00")
    cli("tick", "--tenant", "vendor-b", "--now", "2026-12-02T10:00")
    senders = {message_from_bytes(raw)["From"] for raw in sink.received.raw}
    assert sink.received.count > 0 and all("vendor" not in s for s in senders)
    with tenant_session(a.engine, a.tenant_id) as session:
        ids_of_a = {e.id for e in session.exec(select(Enrollment)).all()}
    with tenant_session(b.engine, b.tenant_id) as session:
        assert all(session.get(Enrollment, i) is None for i in ids_of_a)


def test_a_new_campaign_version_is_not_picked_up_by_running_enrollments(
    cli, two_worlds, tmp_path
) -> None:
    import shutil

    a, _ = two_worlds
    changed = tmp_path / "cloud-security-v2"
    shutil.copytree(CAMPAIGN, changed)
    template = changed / "templates" / "email" / "intro.en.mjml"
    template.write_text(
        template.read_text(encoding="utf-8").replace(
            "</mj-body>",
            "<mj-section><mj-column><mj-text>NEW IN V2</mj-text></mj-column></mj-section>"
            "</mj-body>",
        ),
        encoding="utf-8",
    )
    assert "unchanged" in cli("campaign", "load", str(CAMPAIGN), "--tenant", "vendor-a").stdout
    assert "version 2" in cli("campaign", "load", str(changed), "--tenant", "vendor-a").stdout
    with tenant_session(a.engine, a.tenant_id) as session:
        versions = {e.version_id for e in session.exec(select(Enrollment)).all()}
    assert len(versions) == 1  # still pinned to version 1
    cli(
        "customise",
        "cloud-security",
        "P001",
        "--tenant",
        "vendor-a",
        "--set",
        "signature_line=A",
        "--submit",
    )
    out = tmp_path / "p.html"
    cli(
        "preview",
        "cloud-security",
        "P001",
        "--tenant",
        "vendor-a",
        "--touch",
        "intro",
        "--locale",
        "en",
        "-o",
        str(out),
    )
    assert "NEW IN V2" not in out.read_text(encoding="utf-8")


def test_plugins_command_lists_the_email_channel(cli) -> None:
    result = cli("plugins")
    assert "email" in result.stdout and "partnercast" in result.stdout and "loaded" in result.stdout


def test_now_is_the_instant_a_workflow_command_acts_at(cli, two_worlds) -> None:
    """--now means that instant for everything the command records, on any date."""
    from partnercast.campaigns.models import Cycle
    from partnercast.core.timeutil import as_utc

    a, _b = two_worlds
    tenant = ("--tenant", "vendor-a")
    cli(
        "customise",
        "cloud-security",
        "P001",
        *tenant,
        "--set",
        "headline=Hi",
        "--submit",
        "--now",
        "2026-11-20T08:00",
    )
    cli(
        "approve",
        "cloud-security",
        "P001",
        *tenant,
        "--reason",
        "asked by phone",
        "--now",
        "2026-11-21T09:30",
    )
    cli(
        "cycle",
        "start",
        "cloud-security",
        *tenant,
        "--at",
        "2026-12-01T09:00",
        "--now",
        "2026-11-22T07:00",
    )
    with tenant_session(a.engine, a.tenant_id) as session:
        enrollment = session.exec(select(Enrollment).where(Enrollment.state == "approved")).one()
        cycle = session.exec(select(Cycle)).one()
    assert as_utc(enrollment.state_changed_at).isoformat() == "2026-11-21T09:30:00+00:00"
    assert as_utc(cycle.created_at).isoformat() == "2026-11-22T07:00:00+00:00"
    assert as_utc(cycle.starts_at).isoformat() == "2026-12-01T09:00:00+00:00"


def test_a_bad_now_is_one_line(cli, two_worlds) -> None:
    result = cli(
        "approve", "cloud-security", "P001", "--tenant", "vendor-a", "--now", "soon", expect=1
    )
    assert result.stderr.strip().splitlines() == [
        "error: --now: 'soon' is not an ISO date or datetime (e.g. 2026-12-01T09:00)"
    ]
