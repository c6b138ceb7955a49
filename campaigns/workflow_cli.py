"""Commands that run a campaign: enroll, customise, approve, preview, cycles, tick, schedule.

Every command acts inside one tenant (``--tenant``) and names partners by their external
id and campaigns by their key, exactly as the user knows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from partnercast.core.cli import (
    NowOption,
    TenantOption,
    console,
    opened_engine,
    parse_now,
    plain,
)
from partnercast.core.errors import UserError

if TYPE_CHECKING:
    from partnercast.campaigns.enrollment import ReadinessCheck
    from partnercast.campaigns.ticking import AfterTick


CampaignArg = Annotated[str, typer.Argument(help="Campaign key, as in campaign.yaml.")]
PartnerArg = Annotated[str, typer.Argument(help="Partner external id.")]
NoteOption = Annotated[str, typer.Option("--note", help="A note for the concierge.")]
ReasonOption = Annotated[
    str,
    typer.Option(
        "--reason",
        help="Why the agency decides on the partner's behalf (required; recorded, and the "
        "partner sees it in the portal).",
    ),
]


def _enroll_command(readiness: ReadinessCheck) -> Any:
    """`enroll`, checking partners' readiness with ``readiness`` (the composition root
    hands in the concierge's checklist: campaigns do not import the concierge)."""

    def enroll(campaign: CampaignArg, tenant: TenantOption, now: NowOption = None) -> None:
        """Invite every active partner in the campaign's target segments."""
        from partnercast.campaigns.enrollment import enroll_partners
        from partnercast.campaigns.store import get_campaign
        from partnercast.tenants.scope import tenant_scope

        moment = parse_now(now)
        with tenant_scope(tenant) as session:
            found = get_campaign(session, campaign)
            report = enroll_partners(session, found, now=moment, readiness=readiness)
        console.print(
            f"invited {len(report.invited)} partners; {len(report.already)} already enrolled; "
            f"{report.not_targeted} not in a target segment"
        )
        for external_id, missing in report.not_ready.items():
            console.print(
                f"not ready, skipped: {external_id} misses {', '.join(missing)}",
                markup=False,
                highlight=False,
            )

    return enroll


def enrollments(campaign: CampaignArg, tenant: TenantOption) -> None:
    """List the campaign's enrollments and their approval states."""
    from sqlmodel import col, select

    from partnercast.campaigns.models import Enrollment
    from partnercast.campaigns.store import get_campaign
    from partnercast.tenants.models import Partner
    from partnercast.tenants.scope import tenant_scope

    table = Table(
        "partner", "name", "segment", "state", "auto", "version", title=f"enrollments in {campaign}"
    )
    with tenant_scope(tenant) as session:
        found = get_campaign(session, campaign)
        rows = session.exec(
            select(Enrollment, Partner)
            .join(Partner, col(Partner.id) == Enrollment.partner_id)
            .where(Enrollment.campaign_id == found.id)
            .order_by(col(Partner.external_id))
        ).all()
        for enrollment, partner in rows:
            table.add_row(
                partner.external_id,
                partner.name,
                enrollment.segment_key,
                enrollment.state.replace("_", " "),
                "yes" if enrollment.auto_approve else "",
                str(enrollment.version_id),
            )
    console.print(table)


def _parse_assignments(assignments: list[str], locale: str | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, raw = assignment.partition("=")
        if not sep or not name.strip():
            raise UserError(f"expected FIELD=VALUE, got {assignment!r}", where="--set")
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        values[name.strip()] = {locale: value} if locale and isinstance(value, str) else value
    return values


def _load_values_file(path: Path) -> dict[str, Any]:
    import yaml

    from partnercast.core.boundedread import read_bounded
    from partnercast.core.yamlfile import MAX_YAML_BYTES, compose_bounded

    try:
        data = compose_bounded(read_bounded(path, MAX_YAML_BYTES).decode("utf-8"))[1]
    except UnicodeDecodeError as error:
        raise UserError(f"not UTF-8 text (byte {error.start})", where=str(path)) from error
    except OSError as error:
        raise UserError(f"cannot read: {error.strerror}", where=str(path)) from error
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"not valid YAML: {error.problem}", where=where) from error
    except yaml.YAMLError as error:  # a control character: the first line says which, where
        problem = str(error).splitlines()[0]
        raise UserError(f"not valid YAML: {problem}", where=str(path)) from error
    if not isinstance(data, dict):
        raise UserError("expected a mapping of field: value", where=str(path))
    return data


def customise_command(
    campaign: CampaignArg,
    partner: PartnerArg,
    tenant: TenantOption,
    assignments: Annotated[list[str], typer.Option("--set", help="FIELD=VALUE (repeatable).")] = [],  # noqa: B006
    values_file: Annotated[
        Path | None, typer.Option("--file", help="YAML file of field: value.")
    ] = None,
    locale: Annotated[
        str | None, typer.Option(help="Set text values for this locale only.")
    ] = None,
    submit: Annotated[
        bool, typer.Option("--submit", help="Submit for the partner's approval.")
    ] = False,
    now: NowOption = None,
) -> None:
    """Change a partner's editable fields (refused with the field and reason if invalid)."""
    from partnercast.campaigns import approval
    from partnercast.campaigns.enrollment import customise, find_enrollment
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    values = _load_values_file(values_file) if values_file else {}
    values.update(_parse_assignments(assignments, locale))
    if not values and not submit:
        raise UserError("nothing to change: give --set FIELD=VALUE or --file")
    with tenant_scope(tenant) as session:
        enrollment = find_enrollment(session, campaign, partner)
        if values:
            if locale:
                for name, value in list(values.items()):
                    current = enrollment.customization.get(name)
                    if isinstance(value, dict) and isinstance(current, dict):
                        values[name] = {**current, **value}
            customise(session, enrollment, values, actor="cli", now=moment)
        if submit:
            approval.transition(session, enrollment, "submit", actor="cli", now=moment)
        state = enrollment.state
    console.print(f"{partner}: {state.replace('_', ' ')}")


def _decision_command(decision: str, help_text: str) -> Any:
    """approve, decline, request-changes: a decision made at the agency, recorded on the
    partner's behalf with its reason (campaigns/decisions.py)."""

    def command(
        campaign: CampaignArg,
        partner: PartnerArg,
        tenant: TenantOption,
        reason: ReasonOption = "",
        note: NoteOption = "",
        now: NowOption = None,
    ) -> None:
        import getpass

        from partnercast.campaigns.decisions import Client, cli_principal, decide
        from partnercast.campaigns.enrollment import find_enrollment
        from partnercast.tenants.scope import tenant_scope

        moment = parse_now(now)
        if not reason.strip():
            raise UserError(
                "--reason is required: a decision made here is on the partner's behalf, "
                "and the partner sees why"
            )
        try:
            operator = getpass.getuser()
        except (KeyError, OSError):
            operator = "unknown"
        with tenant_scope(tenant) as session:
            enrollment = find_enrollment(session, campaign, partner)
            record = decide(
                session,
                enrollment,
                decision,
                principal=cli_principal(operator),
                now=moment,
                reason=reason,
                note=note,
                client=Client(address="cli", user_agent="partnercast CLI"),
            )
            state = record.state_after
        console.print(f"{partner}: {state.replace('_', ' ')} (on the partner's behalf)")

    command.__doc__ = help_text
    return command


def _transition_command(action: str, help_text: str) -> Any:

    def command(
        campaign: CampaignArg,
        partner: PartnerArg,
        tenant: TenantOption,
        note: NoteOption = "",
        now: NowOption = None,
    ) -> None:
        from partnercast.campaigns import approval
        from partnercast.campaigns.enrollment import find_enrollment
        from partnercast.tenants.scope import tenant_scope

        moment = parse_now(now)
        with tenant_scope(tenant) as session:
            enrollment = find_enrollment(session, campaign, partner)
            state = approval.transition(
                session, enrollment, action, actor="cli", note=note, now=moment
            )
        console.print(f"{partner}: {state.replace('_', ' ')}")

    command.__doc__ = help_text
    return command


def auto_approve(
    campaign: CampaignArg,
    partner: PartnerArg,
    tenant: TenantOption,
    enabled: Annotated[
        bool, typer.Option("--on/--off", help="Turn auto-approval on or off.")
    ] = True,
) -> None:
    """Record the partner's choice to approve this campaign's sends automatically."""
    from partnercast.campaigns.enrollment import find_enrollment, set_auto_approve
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        set_auto_approve(session, find_enrollment(session, campaign, partner), enabled)
    console.print(f"{partner}: auto-approval {'on' if enabled else 'off'}")


def preview(
    campaign: CampaignArg,
    partner: PartnerArg,
    tenant: TenantOption,
    touch: Annotated[str, typer.Option(help="Touch key.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")],
    locale: Annotated[str | None, typer.Option(help="Locale (default: the partner's).")] = None,
) -> None:
    """Render one touch for one partner and locale to a file, as a contact would see it."""
    from partnercast.campaigns.preview import render_preview
    from partnercast.core.settings import load_settings
    from partnercast.tenants.scope import tenant_scope

    settings = load_settings()
    with tenant_scope(tenant, settings) as session:
        result = render_preview(session, settings, campaign, partner, touch, locale)
    try:
        out.write_text(result.html, encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write: {error.strerror}", where=str(out)) from error
    subject = plain(result.subject)
    console.print(Text.assemble((subject, "bold"), plain(f" ({result.locale}) -> {out}")))
    for problem in result.problems:
        console.print(Text.assemble(("problem:", "yellow"), " ", plain(problem)))


def cycle_start(
    campaign: CampaignArg,
    tenant: TenantOption,
    at: Annotated[
        str | None, typer.Option("--at", help="Start (ISO datetime, UTC); default --now.")
    ] = None,
    now: NowOption = None,
) -> None:
    """Start the next cycle of a campaign and plan its dispatches."""
    from sqlmodel import func, select

    from partnercast.campaigns.cycles import start_cycle
    from partnercast.campaigns.store import get_campaign
    from partnercast.core.models import Dispatch
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    starts_at = parse_now(at, option="--at") if at else moment
    with tenant_scope(tenant) as session:
        cycle = start_cycle(session, get_campaign(session, campaign), starts_at, now=moment)
        planned = session.exec(
            select(func.count()).select_from(Dispatch).where(Dispatch.cycle_id == cycle.id)
        ).one()
    console.print(
        f"cycle {cycle.number}: {cycle.starts_at:%Y-%m-%d} to {cycle.ends_at:%Y-%m-%d}, "
        f"{planned} dispatches planned"
    )


def _tick_command(after: Sequence[AfterTick]) -> Any:
    """`tick`, ending with the steps ``after`` (the composition root hands in the
    concierge's task scan: campaigns do not import the concierge)."""

    def tick_command(
        now: NowOption = None,
        tenant: Annotated[
            str | None,
            typer.Option("--tenant", "-t", envvar="PARTNERCAST_TENANT", help="Only this tenant."),
        ] = None,
    ) -> None:
        """Run everything due at NOW: start and close cycles, send due touches."""
        from partnercast.campaigns.ticking import tick
        from partnercast.core.settings import load_settings
        from partnercast.core.worker import new_worker_id
        from partnercast.tenants.scope import resolve_tenant

        moment = parse_now(now)
        settings = load_settings()
        with opened_engine(settings) as engine:
            tenant_ids = [resolve_tenant(engine, tenant)] if tenant else None
            # Its own worker id: two `partnercast tick` runs at once never run the same
            # dispatch.
            report = tick(
                engine,
                settings,
                moment,
                tenant_ids=tenant_ids,
                worker_id=new_worker_id(),
                after=after,
            )
        states = (
            ", ".join(f"{count} {state}" for state, count in sorted(report.states.items()))
            or "nothing due"
        )
        console.print(f"tick: {states}; {report.sent} messages sent")
        for line in report.why():  # one line per distinct reason, never a traceback
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)

    return tick_command


def campaign_status(campaign: str, tenant: str | None) -> None:
    """Per partner: approval state and touches sent, delivered and suppressed.

    Shown by ``partnercast status CAMPAIGN`` (app/cli.py), the same command that
    shows the queue without a campaign.
    """
    from partnercast.campaigns.cycles import campaign_cycles
    from partnercast.campaigns.store import get_campaign
    from partnercast.tenants.scope import tenant_scope

    if not tenant:
        raise UserError(
            "a campaign's status needs --tenant (or PARTNERCAST_TENANT)", where=campaign
        )
    from partnercast.campaigns.reporting import partner_rows, partner_table

    with tenant_scope(tenant) as session:
        found = get_campaign(session, campaign)
        rows = partner_rows(session, found)
        cycles = campaign_cycles(session, found)
    console.print(
        partner_table(
            rows, show_names=console.width >= 100, title=f"{campaign}: {len(cycles)} cycle(s)"
        )
    )


def schedule(
    campaign: CampaignArg,
    tenant: TenantOption,
    cycle: Annotated[int | None, typer.Option(help="Cycle number (default: the latest).")] = None,
    start: Annotated[
        str | None,
        typer.Option(help="Preview a cycle starting then (ISO, UTC); nothing is written."),
    ] = None,
) -> None:
    """When each touch goes out to each partner, in the partner's local time."""
    from partnercast.campaigns.schedule import cycle_schedule, preview_schedule, schedule_table
    from partnercast.campaigns.store import get_campaign
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        found = get_campaign(session, campaign)
        if start is not None:
            when = parse_now(start, option="--start")
            rows = preview_schedule(session, found, when)
            title = f"{campaign}: a cycle starting {when:%Y-%m-%d %H:%M} UTC (preview)"
        else:
            planned, rows = cycle_schedule(session, found, cycle)
            title = f"{campaign}: cycle {planned.number} from {planned.starts_at:%Y-%m-%d}"
    console.print(schedule_table(rows, title=title))


def register(
    app: typer.Typer, *, readiness: ReadinessCheck, after_tick: Sequence[AfterTick]
) -> None:
    """Mount the workflow commands at the top level, and `cycle` as a group. ``enroll``
    checks readiness with ``readiness``; ``tick`` ends with the steps ``after_tick``."""
    app.command("enroll")(_enroll_command(readiness))
    app.command("enrollments")(enrollments)
    app.command("customise")(customise_command)
    app.command("submit")(
        _transition_command("submit", "Submit the customised campaign for the partner's approval.")
    )
    app.command("approve")(
        _decision_command(
            "approve", "Approve what was submitted, on the partner's behalf (--reason)."
        )
    )
    app.command("request-changes")(
        _decision_command("request_changes", "Ask for changes, on the partner's behalf (--reason).")
    )
    app.command("decline")(
        _decision_command("decline", "Decline the campaign, on the partner's behalf (--reason).")
    )
    app.command("auto-approve")(auto_approve)
    app.command("preview")(preview)
    app.command("tick")(_tick_command(after_tick))
    app.command("schedule")(schedule)
    cycle_app = typer.Typer(help="Campaign cycles.", no_args_is_help=True)
    cycle_app.command("start")(cycle_start)
    app.add_typer(cycle_app, name="cycle")
