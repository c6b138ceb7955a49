"""Commands for concierge work: tasks, concierges and capacity, readiness, weekly reviews.

Like every tenant command, each acts inside ``--tenant`` only: a task id or a partner of
another tenant is not found. Mistakes are one-line UserErrors.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from partnercast.core.cli import (
    NowOption,
    OptionalTenant,
    TenantOption,
    console,
    err_console,
    parse_now,
)
from partnercast.core.errors import UserError

if TYPE_CHECKING:
    from sqlmodel import Session

    from partnercast.concierge import capacity
    from partnercast.concierge import tasks as concierge
    from partnercast.concierge.models import ConciergeTask


tasks_app = typer.Typer(
    help="Concierge tasks: list (the default), show, add, assign, start, note, close, scan.",
    no_args_is_help=False,
)
concierges_app = typer.Typer(
    help="Concierges, the languages they cover, and their load.", no_args_is_help=True
)

PartnerArg = Annotated[str, typer.Argument(help="The partner's external id.", show_default=False)]
TaskArg = Annotated[int, typer.Argument(help="The task id.", show_default=False)]
ByOption = Annotated[
    str, typer.Option("--by", envvar="PARTNERCAST_USER", help="Who does this (for the notes).")
]


def register(app: typer.Typer) -> None:
    """Mount `tasks`, `concierges`, `review`, `reviews` and `partners readiness`."""
    from partnercast.tenants.cli import partners_app

    app.add_typer(tasks_app, name="tasks")
    app.add_typer(concierges_app, name="concierges")
    app.command("review")(review_command)
    app.command("reviews")(reviews_command)
    partners_app.command("readiness")(readiness_command)


def _text_row(table: Table, *cells: object) -> None:
    table.add_row(*(Text("" if cell is None else str(cell)) for cell in cells))


# --- tasks --------------------------------------------------------------------------------


OwnerFilter = Annotated[str | None, typer.Option("--owner", help="Only this concierge's.")]
PartnerFilter = Annotated[str | None, typer.Option("--partner", help="Only this partner's.")]
KindFilter = Annotated[str | None, typer.Option("--kind", help="Only this kind.")]
StatusFilter = Annotated[
    str | None,
    typer.Option("--status", help="open (the default: open or in progress), a status, or all."),
]
OverdueFilter = Annotated[bool, typer.Option("--overdue", help="Only open tasks past due.")]


@tasks_app.callback(invoke_without_command=True)
def tasks_main(
    ctx: typer.Context,
    tenant: OptionalTenant = None,
    owner: OwnerFilter = None,
    partner: PartnerFilter = None,
    kind: KindFilter = None,
    status: StatusFilter = None,
    overdue: OverdueFilter = False,
    now: NowOption = None,
) -> None:
    """List the tenant's concierge tasks (open ones by default), by due date."""
    from partnercast.concierge import tasks as concierge

    if ctx.invoked_subcommand is not None:
        return
    if not tenant:
        raise UserError("name the tenant with --tenant (or PARTNERCAST_TENANT)")
    query = concierge.TaskFilter(owner, partner, kind, status, overdue)
    _print_tasks(tenant, query, parse_now(now))


@tasks_app.command("list")
def tasks_list(
    tenant: TenantOption,
    owner: OwnerFilter = None,
    partner: PartnerFilter = None,
    kind: KindFilter = None,
    status: StatusFilter = None,
    overdue: OverdueFilter = False,
    now: NowOption = None,
) -> None:
    """List the tenant's concierge tasks (the same as `partnercast tasks`)."""
    from partnercast.concierge import tasks as concierge

    query = concierge.TaskFilter(owner, partner, kind, status, overdue)
    _print_tasks(tenant, query, parse_now(now))


def _print_tasks(tenant: str, query: concierge.TaskFilter, now: datetime) -> None:
    """The tasks ``query`` finds, overdue as seen at ``now``."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        tasks = concierge.list_tasks(session, query, now=now)
        lines = _task_lines(session, tasks, now, width=console.width)
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _task_lines(
    session: Session, tasks: list[ConciergeTask], now: datetime, *, width: int
) -> list[str]:
    """Each task on one aligned line, what it is about indented under it.

    A table squeezes the text that matters (what the task is about) into a column a few
    letters wide on an 80-column terminal; this reads the same at any width.
    """
    from partnercast.concierge import tasks as concierge
    from partnercast.core.timeutil import as_utc
    from partnercast.tenants.partners import list_partners

    partners = {p.id: p.external_id for p in list_partners(session)}
    owners = {c.id: c.name for c in concierge.list_concierges(session)}
    rows: list[tuple[str, ...]] = []
    for task in tasks:
        due = f"{as_utc(task.due_at):%Y-%m-%d}"
        if task.status in concierge.OPEN_STATUSES and as_utc(task.due_at) < now:
            due += " overdue"
        notes = sum(1 for line in task.notes.splitlines() if line.startswith("["))
        rows.append(
            (
                f"#{task.id}",
                due,
                # A task about the vendor as a whole (a disabled webhook) has no partner.
                partners.get(task.partner_id, "?") if task.partner_id else "(vendor)",
                task.kind,
                owners.get(task.owner_id, "unassigned"),
                task.status.replace("_", " "),
                f"by {task.created_by}" + (f", {notes} notes" if notes > 1 else ""),
            )
        )
    header = ("task", "due", "partner", "kind", "owner", "status", "")
    # What does not fit the terminal's width beside the others goes under the row, with
    # what the task is about: first who made it, then the owner. A row never wraps.
    shown = list(range(len(header)))
    for movable in (6, 4):  # who made it, then the owner
        if _widest(shown, header, rows) <= width:
            break
        shown.remove(movable)
    moved = [i for i in range(len(header)) if i not in shown]
    widths = {i: max(len(row[i]) for row in (header, *rows)) for i in shown}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cells[i].ljust(widths[i]) for i in shown).rstrip()

    out = [f"{len(tasks)} task{'' if len(tasks) == 1 else 's'}"]
    if tasks:
        out.append(line(header))
    wrap = max(width - 4, 30)
    for task, row in zip(tasks, rows, strict=True):
        out.append(line(row))
        under = [task.title] if task.title else []
        under += [f"owner {row[i]}" if header[i] == "owner" else row[i] for i in moved if row[i]]
        if under:
            text = " · ".join(under)
            out += textwrap.wrap(text, wrap, initial_indent="    ", subsequent_indent="    ")
    return out


def _widest(shown: list[int], header: tuple[str, ...], rows: list[tuple[str, ...]]) -> int:
    """The longest line of the ``shown`` columns, two spaces apart."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in shown]
    return sum(widths) + 2 * (len(widths) - 1)


@tasks_app.command("show")
def tasks_show(task_id: TaskArg, tenant: TenantOption, now: NowOption = None) -> None:
    """One task in full, with its notes."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        task = concierge.get_task(session, task_id)
        lines = _task_lines(session, [task], moment, width=console.width)[1:]
    notes = task.notes.strip().splitlines() or ["(no notes)"]
    console.print(
        "\n".join([*lines, "notes:", *(f"  {note}" for note in notes)]),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@tasks_app.command("add")
def tasks_add(
    partner: PartnerArg,
    tenant: TenantOption,
    kind: Annotated[str, typer.Option("--kind", help="What kind of work (e.g. onboarding).")],
    due: Annotated[
        str | None, typer.Option("--due", help="Due date (ISO); default in task_due_days.")
    ] = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Concierge; default the partner's.")
    ] = None,
    title: Annotated[str, typer.Option("--title", help="What it is about.")] = "",
    note: Annotated[str, typer.Option("--note", help="A first note.")] = "",
    by: ByOption = "",
    now: NowOption = None,
) -> None:
    """Add a task by hand."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    due_at = parse_now(due, option="--due") if due else None
    with tenant_scope(tenant) as session:
        target = get_partner(session, partner)
        holder = concierge.get_concierge(session, owner) if owner else None
        due_at = due_at or concierge.default_due(
            moment, concierge.concierge_settings(session).task_due_days
        )
        task = concierge.add_task(
            session,
            target,
            kind=kind,
            due_at=due_at,
            title=title,
            owner=holder,
            note=note,
            created_by=by or "person",
            now=moment,
        )
    console.print(f"task {task.id} added for {partner}, due {due_at:%Y-%m-%d}", markup=False)


@tasks_app.command("assign")
def tasks_assign(
    task_id: TaskArg,
    owner: Annotated[str, typer.Argument()],
    tenant: TenantOption,
    now: NowOption = None,
) -> None:
    """Give a task to a concierge."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        task = concierge.get_task(session, task_id)
        holder = concierge.get_concierge(session, owner)
        concierge.assign_task(session, task, holder, now=moment)
    console.print(f"task {task_id} assigned to {owner}", markup=False)


@tasks_app.command("start")
def tasks_start(
    task_id: TaskArg, tenant: TenantOption, by: ByOption = "", now: NowOption = None
) -> None:
    """Mark a task in progress."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        task = concierge.get_task(session, task_id)
        concierge.start_task(session, task, author=by, now=moment)
    console.print(f"task {task_id} in progress")


@tasks_app.command("note")
def tasks_note(
    task_id: TaskArg,
    text: Annotated[str, typer.Argument()],
    tenant: TenantOption,
    by: ByOption = "",
    now: NowOption = None,
) -> None:
    """Add a note to a task."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        task = concierge.get_task(session, task_id)
        concierge.note_task(session, task, text, author=by, now=moment)
    console.print(f"noted on task {task_id}")


@tasks_app.command("close")
def tasks_close(
    task_id: TaskArg,
    tenant: TenantOption,
    note: Annotated[str, typer.Option("--note", help="What was done.")] = "",
    dismiss: Annotated[
        bool, typer.Option("--dismiss", help="Close as dismissed (nothing to do).")
    ] = False,
    by: ByOption = "",
    now: NowOption = None,
) -> None:
    """Close a task as done (or dismissed)."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    status = concierge.DISMISSED if dismiss else concierge.DONE
    with tenant_scope(tenant) as session:
        task = concierge.get_task(session, task_id)
        concierge.close_task(session, task, note=note, status=status, author=by, now=moment)
    console.print(f"task {task_id} {status}")


@tasks_app.command("scan")
def tasks_scan(tenant: TenantOption, now: NowOption = None) -> None:
    """Open the tasks the tenant's state calls for; close those whose cause is gone."""
    from partnercast.concierge import capacity
    from partnercast.concierge.task_scan import scan
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        report = scan(session, moment)
        overloads = capacity.overloads(session)
    console.print(f"opened {len(report.opened)} tasks, closed {len(report.closed)}")
    _warn(overloads)


# --- concierges ---------------------------------------------------------------------------


@concierges_app.command("add")
def concierges_add(
    name: Annotated[str, typer.Argument(help="How commands will name this concierge.")],
    tenant: TenantOption,
    languages: Annotated[str, typer.Option("--languages", help="Languages covered: de,en.")],
    email: Annotated[str, typer.Option("--email", help="Their email address.")] = "",
    now: NowOption = None,
) -> None:
    """Add a concierge who covers partners in the given languages."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    langs = concierge.parse_languages(languages)
    with tenant_scope(tenant) as session:
        concierge.add_concierge(session, name, languages=langs, email=email, now=moment)
    console.print(f"added concierge {name} ({', '.join(langs)})", markup=False)


@concierges_app.command("list")
def concierges_list(tenant: TenantOption) -> None:
    """List the concierges with their load per language against the cap."""
    from partnercast.concierge import capacity
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        people = concierge.list_concierges(session)
        loads = capacity.loads(session)
        cap = concierge.concierge_settings(session).partners_per_language_cap
        overloads = capacity.overloads(session)
    table = Table(
        "name", "email", "languages", "load per language", title=f"{len(people)} concierges"
    )
    for person in people:
        load: dict[str, int] = loads.get(person.id or 0, {})
        shown = ", ".join(f"{lang} {load.get(lang, 0)}/{cap}" for lang in person.languages)
        others = [f"{lang} {n}" for lang, n in sorted(load.items()) if lang not in person.languages]
        _text_row(
            table,
            person.name,
            person.email,
            ", ".join(person.languages),
            ", ".join([shown, *others]),
        )
    console.print(table)
    _warn(overloads)


@concierges_app.command("assign")
def concierges_assign(
    partner: PartnerArg,
    name: Annotated[str, typer.Argument(help="The concierge.")],
    tenant: TenantOption,
    language: Annotated[
        str | None, typer.Option("--language", help="Language of the relationship.")
    ] = None,
    now: NowOption = None,
) -> None:
    """Assign a partner to a concierge (one concierge per partner)."""
    from partnercast.concierge import capacity
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        row = capacity.assign_partner(
            session,
            get_partner(session, partner),
            concierge.get_concierge(session, name),
            language=language,
            now=moment,
        )
        overloads = capacity.overloads(session)
    console.print(f"{partner} is looked after by {name} in {row.language}", markup=False)
    _warn(overloads)


@concierges_app.command("balance")
def concierges_balance(
    tenant: TenantOption,
    apply: Annotated[bool, typer.Option("--apply", help="Make the proposed moves.")] = False,
    now: NowOption = None,
) -> None:
    """Propose a balanced assignment, language by language; --apply makes it."""
    from partnercast.concierge import capacity
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        proposal = capacity.propose_balance(session)
        if apply:
            capacity.apply_balance(session, proposal, now=moment)
        overloads = capacity.overloads(session) if apply else []
    for line in proposal.explanations:
        console.print(line, markup=False, highlight=False)
    for language, partners in sorted(proposal.uncovered.items()):
        console.print(
            f"{language}: no concierge covers it ({len(partners)} partners: {', '.join(partners)})",
            markup=False,
            highlight=False,
        )
    if proposal.moves:
        table = Table(
            "partner", "language", "from", "to", "why", title=f"{len(proposal.moves)} moves"
        )
        for move in proposal.moves:
            _text_row(
                table,
                move.partner,
                move.language,
                move.from_concierge or "-",
                move.to_concierge,
                move.reason,
            )
        console.print(table)
    verb = "made" if apply else "proposed (run with --apply to make them)"
    console.print(f"{len(proposal.moves)} moves {verb}" if proposal.moves else "already balanced")
    _warn(overloads)


@concierges_app.command("settings")
def concierges_settings(
    tenant: TenantOption,
    approval_days: Annotated[
        int | None, typer.Option("--approval-days", help="Days an approval may pend.")
    ] = None,
    bounce_threshold: Annotated[
        float | None, typer.Option("--bounce-threshold", help="Bounce rate per dispatch (0.05).")
    ] = None,
    cap: Annotated[
        int | None, typer.Option("--cap", help="Partners per language per quarter.")
    ] = None,
    lead_hours: Annotated[
        int | None, typer.Option("--lead-hours", help="Hours before a lead needs follow-up.")
    ] = None,
    review_days: Annotated[
        int | None, typer.Option("--review-days", help="Days between weekly reviews.")
    ] = None,
    due_days: Annotated[
        int | None, typer.Option("--due-days", help="Days to do an engine-made task.")
    ] = None,
    now: NowOption = None,
) -> None:
    """Show the tenant's concierge thresholds, changing those given."""
    from partnercast.concierge import tasks as concierge
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    changes = {
        "approval_pending_days": approval_days,
        "bounce_rate_threshold": bounce_threshold,
        "partners_per_language_cap": cap,
        "lead_followup_hours": lead_hours,
        "review_interval_days": review_days,
        "task_due_days": due_days,
    }
    with tenant_scope(tenant) as session:
        if any(value is not None for value in changes.values()):
            row = concierge.update_settings(session, changes, now=moment)
        else:
            row = concierge.concierge_settings(session)
    table = Table("setting", "value", title="concierge settings")
    for name in concierge.SETTING_FIELDS:
        _text_row(table, name, getattr(row, name))
    console.print(table)


def _warn(overloads: list[capacity.Overload]) -> None:
    for overload in overloads:
        err_console.print(
            f"[yellow]warning:[/] {escape(str(overload))}", markup=True, highlight=False
        )


# --- readiness ----------------------------------------------------------------------------


READINESS_KEYS = ("strategic", "competent", "contact", "weekly_review", "feedback")
"""concierge.readiness.KEYS, for the help of `partners readiness --set` without importing
the checklist (SQLAlchemy) before the command runs; tests/test_cli_start.py holds them equal."""


def readiness_command(
    tenant: TenantOption,
    partner: Annotated[
        str | None,
        typer.Argument(
            help="The partner's external id; left out, every partner's checklist on one line.",
            show_default=False,
        ),
    ] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="ITEM=yes|no|unknown; items: " + ", ".join(READINESS_KEYS)),
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note on the assessment.")] = None,
    now: NowOption = None,
) -> None:
    """Show (and with --set, change) a partner's readiness checklist, or every partner's."""
    from partnercast.concierge import readiness
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    changes = readiness.parse_assignments(assignments or [])
    if partner is None:
        if changes or note is not None:
            raise UserError("name the partner whose checklist --set or --note changes")
        _readiness_overview(tenant)
        return
    with tenant_scope(tenant) as session:
        target = get_partner(session, partner)
        row = readiness.readiness_of(session, target.id or 0)
        if changes or note is not None:
            row = readiness.set_readiness(session, target, changes, note=note, now=moment)
        states = readiness.item_states(target, row)
        missing = readiness.missing_items(target, row)
    table = Table("item", "state", title=f"readiness of {partner}")
    words = {True: "yes", False: "no", None: "not assessed"}
    for item in readiness.ITEMS:
        _text_row(table, item.label, words[states[item.key]])
    console.print(table)
    if row is not None and row.note:
        console.print(Text(f"note: {row.note}"))
    console.print(
        "ready" if not missing else f"not ready: misses {', '.join(missing)}", markup=False
    )


READINESS_HEADERS = {
    "strategic": "fit",
    "competent": "competent",
    "contact": "contact",
    "weekly_review": "review",
    "feedback": "feedback",
}


def _readiness_overview(tenant: str) -> None:
    """Every partner's checklist: yes, no or ? per item, and whether it is ready."""
    from partnercast.concierge import readiness
    from partnercast.tenants.partners import list_partners
    from partnercast.tenants.scope import tenant_scope

    marks = {True: "yes", False: "no", None: "?"}
    with tenant_scope(tenant) as session:
        partners = list_partners(session)
        rows = readiness.readiness_by_partner(session, [p.id or 0 for p in partners])
        lines = []
        for target in partners:
            row = rows.get(target.id or 0)
            states = readiness.item_states(target, row)
            ready = not readiness.missing_items(target, row)
            cells = [marks[states[key]] for key in readiness.KEYS]
            lines.append((target.external_id, *cells, "ready" if ready else "-"))
    header = ("partner", *(READINESS_HEADERS[key] for key in readiness.KEYS), "")
    table = Table(*header, title="readiness (? = not assessed)")
    for line in lines:
        table.add_row(*(Text(cell) for cell in line))
    console.print(table)
    ready_count = sum(1 for line in lines if line[-1] == "ready")
    console.print(
        f"{ready_count} of {len(lines)} partners ready; a campaign with require_readiness enrolls "
        "only those",
        markup=False,
        highlight=False,
    )


# --- reviews ------------------------------------------------------------------------------


def review_command(
    partner: PartnerArg,
    tenant: TenantOption,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the agenda as Markdown.")
    ] = None,
    notes: Annotated[
        str | None, typer.Option("--notes", help="Record the review as held, with these notes.")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            "--now",
            help="The instant of the review (ISO, UTC when no offset); default now.",
            show_default=False,
        ),
    ] = None,
    by: ByOption = "",
) -> None:
    """The agenda of the weekly joint review with a partner; --notes records it as held."""
    from partnercast.concierge import review
    from partnercast.concierge.review_format import print_agenda, to_markdown
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    now = parse_now(at, option="--at")
    held = None
    with tenant_scope(tenant) as session:
        target = get_partner(session, partner)
        agenda = review.build_agenda(session, target, now)
        if out is not None:  # before the review is recorded: a bad path records nothing
            _write(out, to_markdown(agenda))
        if notes is not None:
            held = review.hold_review(session, target, agenda, notes=notes, by=by, now=now)
    print_agenda(console, agenda)
    if out is not None:
        console.print(f"agenda written to {out}", markup=False, highlight=False)
    if held is not None:
        console.print(f"review {held.id} recorded with its notes", markup=False)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write the agenda: {error.strerror}", where=str(path)) from error


def reviews_command(partner: PartnerArg, tenant: TenantOption) -> None:
    """The reviews held with a partner, newest first, with their notes."""
    from partnercast.concierge import review
    from partnercast.core.timeutil import as_utc
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        rows = review.list_reviews(session, get_partner(session, partner))
    table = Table(
        "id",
        "held",
        "by",
        "notes",
        title=f"{len(rows)} {'review' if len(rows) == 1 else 'reviews'} of {partner}",
    )
    for row in rows:
        _text_row(table, row.id, f"{as_utc(row.held_at):%Y-%m-%d %H:%M}", row.created_by, row.notes)
    console.print(table)
