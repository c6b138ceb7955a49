"""Commands for tenants, partners, contacts and segments.

Every tenant-scoped command opens a session scoped to ``--tenant``: what it reads and
writes is that tenant's rows only. A user's mistake is a UserError, which the root group
prints as one line (exit 1) after the session rolled back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from partnercast.core.cli import (
    NowOption,
    TenantOption,
    console,
    err_console,
    fail,
    opened_engine,
    parse_now,
)
from partnercast.core.errors import NotFound, UserError

if TYPE_CHECKING:
    from sqlmodel import Session

    from partnercast.tenants import suppressions
    from partnercast.tenants.importing import ImportReport
    from partnercast.tenants.importing import Progress as ProgressCallback
    from partnercast.tenants.models import Partner


IMPORT_EXIT_CODES = (
    "The file is CSV (any encoding and separator: detected) or .xlsx; headers are matched "
    "through aliases (docs/imports.md), other columns ignored with a note. "
    "Exit code 0 when at least one row was kept (created, updated or unchanged), even if "
    "other rows were rejected: those are listed with their line numbers. Exit code 1 when "
    "every row was rejected or the file itself is unusable (missing, not readable, a "
    "required column missing); then nothing is written."
)
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="COLUMN=FIELD: read the file's COLUMN as FIELD ('-' ignores it); repeatable, "
        "remembered for the tenant's next imports.",
        show_default=False,
    ),
]

tenants_app = typer.Typer(
    help="Tenants: the vendors, each an isolated space.", no_args_is_help=True
)
partners_app = typer.Typer(help="A tenant's channel partners.", no_args_is_help=True)
contacts_app = typer.Typer(help="Partners' contacts (their customers).", no_args_is_help=True)
segments_app = typer.Typer(help="Named rules that group partners.", no_args_is_help=True)

FileArgument = Annotated[Path, typer.Argument(help="Path of the file.", show_default=False)]


_erasers: dict[str, suppressions.Eraser] = {}
"""What ``contacts erase`` also erases the address from (the layers above: the funnel's
leads), handed in by the composition root."""


def register(app: typer.Typer, *, erasers: Mapping[str, suppressions.Eraser] | None = None) -> None:
    """Mount this folder's commands on the root app; ``erasers`` (by name) erase an address
    from what the layers above tenants keep, in the same transaction as ``contacts erase``."""
    _erasers.update(erasers or {})
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(partners_app, name="partners")
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(segments_app, name="segments")


# --- tenants ------------------------------------------------------------------------------

# What a tenant's email does with a message that was on the wire when a worker died
# (core.outbox.open_deliveries): resend it with the same Message-ID, or never resend it.
GUARANTEES = {"at-least-once": "at_least_once", "at-most-once": "at_most_once"}
GUARANTEE_HELP = (
    "at-least-once (default): a message on the wire when a worker died is resent, with the "
    "same Message-ID; at-most-once: it is never resent and the concierge gets a task."
)


def delivery_guarantee(value: str) -> str:
    """The stored form of a --delivery-guarantee value; a UserError names the choices."""
    stored = GUARANTEES.get(value.strip().lower().replace("_", "-"))
    if stored is None:
        raise UserError(
            f"{value!r} is not a delivery guarantee (use {' or '.join(GUARANTEES)})",
            where="--delivery-guarantee",
        )
    return stored


def _guarantee_text(stored: str) -> str:
    return stored.replace("_", "-")


@tenants_app.command("create")
def tenants_create(
    slug: Annotated[str, typer.Argument(help="Short id: lower-case letters, digits, hyphens.")],
    name: Annotated[str, typer.Option("--name", help="Display name.", show_default=False)],
    locale: Annotated[str, typer.Option("--locale", help="Default locale (CLDR id).")] = "en",
    legal_name: Annotated[str, typer.Option("--legal-name", help="Legal entity name.")] = "",
    postal_address: Annotated[
        str, typer.Option("--postal-address", help="Postal address for email footers.")
    ] = "",
    logo_url: Annotated[str, typer.Option("--logo-url", help="http(s) URL of the logo.")] = "",
    primary_color: Annotated[str, typer.Option("--primary-color", help="#rrggbb.")] = "",
    secondary_color: Annotated[str, typer.Option("--secondary-color", help="#rrggbb.")] = "",
    guarantee: Annotated[
        str, typer.Option("--delivery-guarantee", help=GUARANTEE_HELP)
    ] = "at-least-once",
) -> None:
    """Create a tenant (refuses a slug that is taken)."""
    from partnercast.core.tenancy import plain_session
    from partnercast.core.timeutil import utcnow
    from partnercast.tenants.registry import create_tenant

    stored = delivery_guarantee(guarantee)
    brand = {
        "legal_name": legal_name,
        "postal_address": postal_address,
        "logo_url": logo_url,
        "primary_color": primary_color,
        "secondary_color": secondary_color,
    }
    with opened_engine() as engine, plain_session(engine) as session:
        tenant = create_tenant(session, slug, name=name, locale=locale, brand=brand, now=utcnow())
        tenant.delivery_guarantee = stored
    console.print(f"created tenant {tenant.slug} ({tenant.name})", markup=False, highlight=False)


@tenants_app.command("list")
def tenants_list() -> None:
    """List the tenants."""
    from partnercast.core.tenancy import plain_session
    from partnercast.tenants.registry import list_tenants

    with opened_engine() as engine, plain_session(engine) as session:
        tenants = list_tenants(session)
    table = Table(
        "slug",
        "name",
        "locale",
        "legal name",
        "delivery",
        "unsubscribe",
        title=f"{len(tenants)} tenants",
    )
    for tenant in tenants:
        _add_row(
            table,
            tenant.slug,
            tenant.name,
            tenant.default_locale,
            tenant.brand.get("legal_name", ""),
            _guarantee_text(tenant.delivery_guarantee),
            tenant.unsubscribe_scope,
        )
    console.print(table)


SCOPE_HELP = (
    "What an unsubscribe or a withdrawal of consent stops: vendor (default) the mail of "
    "every partner of the tenant, partner the mail of that partner only."
)


@tenants_app.command("set")
def tenants_set(
    slug: Annotated[str, typer.Argument(help="The tenant's slug.", show_default=False)],
    guarantee: Annotated[
        str | None,
        typer.Option("--delivery-guarantee", help=GUARANTEE_HELP, show_default=False),
    ] = None,
    scope: Annotated[
        str | None, typer.Option("--unsubscribe-scope", help=SCOPE_HELP, show_default=False)
    ] = None,
) -> None:
    """Change a tenant's settings: its delivery guarantee, its unsubscribe scope."""
    from sqlmodel import select

    from partnercast.core.tenancy import plain_session
    from partnercast.tenants import suppressions
    from partnercast.tenants.models import Tenant

    if guarantee is None and scope is None:
        raise UserError("give --delivery-guarantee or --unsubscribe-scope (or both)")
    stored = delivery_guarantee(guarantee) if guarantee is not None else None
    chosen = scope.strip().lower() if scope is not None else None
    if chosen is not None and chosen not in suppressions.SCOPES:
        raise UserError(
            f"{scope!r} is not an unsubscribe scope (use {' or '.join(suppressions.SCOPES)})",
            where="--unsubscribe-scope",
        )
    lines = []
    with opened_engine() as engine, plain_session(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
        if tenant is None:
            raise NotFound(f"no tenant {slug!r} (see `partnercast tenants list`)")
        if stored is not None:
            before = tenant.delivery_guarantee
            tenant.delivery_guarantee = stored
            change = "unchanged" if before == stored else f"was {_guarantee_text(before)}"
            lines.append(f"delivery guarantee {_guarantee_text(stored)} ({change})")
        if chosen is not None:
            before = tenant.unsubscribe_scope
            tenant.unsubscribe_scope = chosen
            change = "unchanged" if before == chosen else f"was {before}"
            lines.append(f"unsubscribe scope {chosen} ({change})")
    console.print(f"tenant {slug}: {'; '.join(lines)}", markup=False, highlight=False)


# --- partners -----------------------------------------------------------------------------


@partners_app.command(
    "import", help=f"Create or update partners from a CSV file. {IMPORT_EXIT_CODES}"
)
def partners_import(
    file: FileArgument, tenant: TenantOption, map_: MapOption = None, now_text: NowOption = None
) -> None:
    from partnercast.tenants.columns import parse_mapping
    from partnercast.tenants.importing import import_partners
    from partnercast.tenants.scope import tenant_scope

    mapping = parse_mapping("partners", map_ or [])
    now = parse_now(now_text)
    with tenant_scope(tenant) as session, _progress(f"importing {file.name}") as progress:
        report = import_partners(session, file, now=now, mapping=mapping, progress=progress)
        _remember(session, "partners", mapping, report)
    _print_report(report, "partners")


@partners_app.command("list")
def partners_list(
    tenant: TenantOption,
    segment: Annotated[
        str | None, typer.Option("--segment", help="Only the members of this segment.")
    ] = None,
) -> None:
    """List the tenant's partners, or one segment's members."""
    from partnercast.tenants import partners as partner_queries
    from partnercast.tenants.scope import tenant_scope
    from partnercast.tenants.segments import segment_members

    with tenant_scope(tenant) as session:
        if segment is None:
            partners = partner_queries.list_partners(session)
        else:
            partners = segment_members(session, segment)
    title = f"{len(partners)} partners" + (f" in segment {segment}" if segment else "")
    table = Table("external id", "name", "tier", "region", "languages", "score", "status")
    table.title = title
    for partner in partners:
        _add_row(
            table,
            partner.external_id,
            partner.name,
            partner.tier,
            partner.region,
            ", ".join(partner.languages),
            f"{partner.score:g}",
            partner.status,
        )
    console.print(table)


@partners_app.command("show")
def partners_show(
    external_id: Annotated[str, typer.Argument(help="The partner's external id.")],
    tenant: TenantOption,
) -> None:
    """Show one partner: profile, brand, point of contact, segments, contact count."""
    from partnercast.tenants import partners as partner_queries
    from partnercast.tenants.scope import tenant_scope
    from partnercast.tenants.segments import partner_segments

    with tenant_scope(tenant) as session:
        partner = partner_queries.get_partner(session, external_id)
        segments = partner_segments(session, partner)
        contacts = partner_queries.count_contacts(session, partner)
    table = Table("field", "value", title=f"partner {partner.external_id}", show_header=False)
    for label, value in _partner_fields(partner):
        _add_row(table, label, value)
    _add_row(table, "segments", ", ".join(segments) or "-")
    _add_row(table, "contacts", str(contacts))
    console.print(table)


def _partner_fields(partner: Partner) -> list[tuple[str, str]]:
    return [
        ("name", partner.name),
        ("tier", partner.tier),
        ("region", partner.region),
        ("languages", ", ".join(partner.languages)),
        ("tags", ", ".join(partner.tags)),
        ("score", f"{partner.score:g}"),
        ("time zone", partner.time_zone),
        ("status", partner.status),
        ("legal name", partner.legal_name),
        ("postal address", partner.postal_address),
        ("logo", partner.logo_url),
        ("colours", " ".join(c for c in (partner.primary_color, partner.secondary_color) if c)),
        ("sender", _named_address(partner.sender_name, partner.sender_email)),
        ("point of contact", _named_address(partner.contact_name, partner.contact_email)),
        ("signature", partner.signature),
    ]


def _named_address(name: str, address: str) -> str:
    return f"{name} <{address}>" if name and address else name or address


# --- contacts -----------------------------------------------------------------------------


@contacts_app.command(
    "import",
    help=(
        "Create or update a partner's contacts from a CSV file. Give '-' as PARTNER to "
        f"take each row's partner from a 'partner' column. {IMPORT_EXIT_CODES}"
    ),
)
def contacts_import(
    partner: Annotated[str, typer.Argument(help="The partner's external id, or '-'.")],
    file: FileArgument,
    tenant: TenantOption,
    map_: MapOption = None,
    now_text: NowOption = None,
) -> None:
    from partnercast.tenants.columns import parse_mapping
    from partnercast.tenants.importing import import_contacts
    from partnercast.tenants.scope import tenant_scope

    mapping = parse_mapping("contacts", map_ or [])
    now = parse_now(now_text)
    with tenant_scope(tenant) as session, _progress(f"importing {file.name}") as progress:
        partner_id = None if partner == "-" else partner
        report = import_contacts(
            session, file, partner_id, now=now, mapping=mapping, progress=progress
        )
        _remember(session, "contacts", mapping, report)
    _print_report(report, "contacts")


def _remember(session: Session, kind: str, mapping: dict[str, str], report: ImportReport) -> None:
    """Keep the --map choices for the tenant's next imports of ``kind``."""
    from partnercast.core.tenancy import session_tenant
    from partnercast.tenants.models import Tenant

    if not mapping or report.kept == 0:
        return
    tenant = session.get(Tenant, session_tenant(session))
    if tenant is None:
        return
    columns = dict(tenant.import_columns)
    columns[kind] = {**columns.get(kind, {}), **mapping}
    tenant.import_columns = columns


@contextmanager
def _progress(description: str) -> Iterator[ProgressCallback]:
    """An import's progress callback drawing a bar on a terminal (stderr), nothing in a
    pipe (partnercast.plugins.progress)."""
    from partnercast.plugins.progress import progress_bar

    with progress_bar(description, console=err_console) as update:

        def advance(phase: str, done: int, total: int) -> None:
            update(done, total or None, f"{description}: {phase}")

        yield advance


@contacts_app.command("suppress")
def contacts_suppress(
    emails: Annotated[list[str], typer.Argument(help="The addresses.", show_default=False)],
    tenant: TenantOption,
    partner: Annotated[
        str | None,
        typer.Option(
            "--partner",
            help="Stop this partner's mail only (default: every partner of the tenant).",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with it).")] = "manual",
    now_text: NowOption = None,
) -> None:
    """Stop all mail to the addresses from now on (a withdrawal of consent is recorded)."""
    from partnercast.tenants import partners as partner_queries
    from partnercast.tenants import suppressions
    from partnercast.tenants.scope import tenant_scope

    now = parse_now(now_text)
    with tenant_scope(tenant) as session:
        owner = partner_queries.get_partner(session, partner) if partner else None
        added = suppressions.suppress_by_command(
            session, emails, partner_id=owner.id if owner else None, reason=reason, now=now
        )
    scope = f"for partner {partner}" if partner else "for every partner"
    console.print(
        f"suppressed {added} of {len(emails)} addresses {scope} "
        f"({len(emails) - added} already were)",
        markup=False,
        highlight=False,
    )


@contacts_app.command("erase")
def contacts_erase(
    emails: Annotated[list[str], typer.Argument(help="The addresses.", show_default=False)],
    tenant: TenantOption,
    now_text: NowOption = None,
) -> None:
    """Erase the addresses from the tenant on the person's request: contacts, deliveries,
    suppressions and consent records lose them; a one-way hash is kept so that no later
    import or send reaches them again."""
    from partnercast.tenants import suppressions
    from partnercast.tenants.scope import tenant_scope

    now = parse_now(now_text)
    with tenant_scope(tenant) as session:
        results = [suppressions.erase(session, email, now=now, also=_erasers) for email in emails]
    for email, result in zip(emails, results, strict=True):
        again = " (erased before)" if result.already else ""
        console.print(
            f"erased {email.strip()}{again}: {result.contacts} contacts anonymised, "
            f"{result.suppressions} suppressions and {result.consent_records} consent "
            "records now hold only its hash"
            + "".join(f", {count} {name} anonymised" for name, count in result.others),
            markup=False,
            highlight=False,
        )


@contacts_app.command("consents")
def contacts_consents(
    tenant: TenantOption,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the CSV here (default: standard output)."),
    ] = None,
) -> None:
    """Export the tenant's consent records as CSV: when consent was given or withdrawn,
    how, the text agreed to, and the source."""
    from partnercast.plugins import spreadsheet
    from partnercast.tenants import partners as partner_queries
    from partnercast.tenants import suppressions
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        records = suppressions.consent_records(session)
        partner_ids = {p.id: p.external_id for p in partner_queries.list_partners(session)}
        rows = [
            [
                record.recorded_at.isoformat(),
                record.occurred_at.isoformat(),
                "granted" if record.granted else "withdrawn",
                record.method,
                partner_ids.get(record.partner_id, "") if record.partner_id else "",
                record.email,
                record.email_hash,
                record.text,
                record.source,
            ]
            for record in records
        ]
    header = [
        "recorded_at", "occurred_at", "consent", "method", "partner", "email", "email_sha256",
        "text", "source",
    ]  # fmt: skip
    if out is None:
        writer = spreadsheet.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = spreadsheet.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    console.print(f"wrote {len(rows)} consent records to {out}", markup=False, highlight=False)


@contacts_app.command("list")
def contacts_list(
    partner: Annotated[str, typer.Argument(help="The partner's external id.")],
    tenant: TenantOption,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many rows to show.")] = 20,
) -> None:
    """Count a partner's contacts and show the first ones."""
    from partnercast.tenants import partners as partner_queries
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        owner = partner_queries.get_partner(session, partner)
        total = partner_queries.count_contacts(session, owner)
        contacts = partner_queries.list_contacts(session, owner, limit=limit)
    table = Table("external id", "email", "name", "company", "locale", "consent")
    table.title = f"{total} contacts of {owner.external_id}" + (
        f" (first {len(contacts)})" if total > len(contacts) else ""
    )
    for contact in contacts:
        _add_row(
            table,
            contact.external_id,
            contact.email,
            f"{contact.first_name} {contact.last_name}".strip(),
            contact.company,
            contact.locale,
            "yes" if contact.consent else "no",
        )
    console.print(table)


# --- segments -----------------------------------------------------------------------------


@segments_app.command("load")
def segments_load(file: FileArgument, tenant: TenantOption) -> None:
    """Create or update segments from a YAML file (all or nothing; others are kept)."""
    from partnercast.core.timeutil import utcnow
    from partnercast.tenants.scope import tenant_scope
    from partnercast.tenants.segments import load_segments_file

    with tenant_scope(tenant) as session:
        loaded = load_segments_file(session, file, now=utcnow())
    console.print(
        f"loaded {len(loaded)} segments: {', '.join(s.key for s in loaded)}", markup=False
    )


@segments_app.command("list")
def segments_list(tenant: TenantOption) -> None:
    """List the tenant's segments with their member counts."""
    from partnercast.tenants.scope import tenant_scope
    from partnercast.tenants.segments import segments_with_counts

    with tenant_scope(tenant) as session:
        counted = segments_with_counts(session)
    table = Table("key", "name", "members", title=f"{len(counted)} segments")
    for segment, members in counted:
        _add_row(table, segment.key, segment.name, str(members))
    console.print(table)


def _add_row(table: Table, *cells: str) -> None:
    """A row of user data, shown as text (a '[' in a name is not Rich markup)."""
    table.add_row(*(Text(cell) for cell in cells))


def _print_report(report: ImportReport, noun: str) -> None:
    """Notes, the summary line, then the rejected rows; exit 1 when no row was kept."""
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    withdrawn = f", {report.withdrawn} consent withdrawn (suppressed)" if report.withdrawn else ""
    console.print(
        f"{noun}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.rejected)} rejected{withdrawn}",
        highlight=False,
    )
    if report.rejected:
        table = Table("line", "reason", title="rejected rows")
        for rejection in report.rejected:
            _add_row(table, str(rejection.line), rejection.reason)
        console.print(table)
        if report.kept == 0:
            fail(f"every row was rejected; no {noun} imported")
