"""Commands for the funnel: CRM lead stages, the CRM webhook secret, spend, metrics,
the contender score and the reports.

Each acts inside ``--tenant`` only. Loading this module keeps the rollups up to date in
the process (see :mod:`partnercast.funnel.rollups`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from partnercast.core.cli import (
    NowOption,
    OptionalTenant,
    TenantOption,
    compose_before_open,
    console,
    err_console,
    fail,
    output_folder,
    parse_now,
)
from partnercast.core.errors import NotFound, UserError
from partnercast.funnel.names import GROUPINGS, SPEND_KINDS

if TYPE_CHECKING:
    from partnercast.funnel.metrics import FunnelRow


leads_app = typer.Typer(
    help="Leads and their stages from the partners' CRMs.", no_args_is_help=True
)
crm_app = typer.Typer(help="The CRM webhook.", no_args_is_help=True)
spend_app = typer.Typer(
    help="MDF and other investment per partner and campaign.", no_args_is_help=True
)
metrics_app = typer.Typer(
    help="The funnel and ROI (the default: show), fetch (social and search metrics from the "
    "networks), rebuild (recompute the rollups).",
    no_args_is_help=False,
)
CampaignOption = Annotated[str | None, typer.Option("--campaign", help="Only this campaign.")]
ByOption = Annotated[str, typer.Option("--by", help=f"One of {', '.join(GROUPINGS)}.")]
RebuildOption = Annotated[
    bool, typer.Option("--rebuild", help="Recompute the rollups from the event log first.")
]
PartnerOption = Annotated[
    str | None, typer.Option("--partner", help="Only this partner's own numbers.")
]


def register(app: typer.Typer) -> None:
    """Mount `leads`, `crm`, `spend`, `metrics`, `score`, `report` and `partners link`."""
    from partnercast.tenants.cli import partners_app

    compose_before_open(_keep_rollups)  # before a command opens the database, not now
    app.add_typer(leads_app, name="leads")
    app.add_typer(crm_app, name="crm")
    app.add_typer(spend_app, name="spend")
    app.add_typer(metrics_app, name="metrics")
    app.command("score")(score_command)
    app.command("report")(report_command)
    partners_app.command("link")(partners_link)


def _keep_rollups() -> None:
    from partnercast.funnel import rollups

    rollups.install()


def _row(table: Table, *cells: object) -> None:
    table.add_row(*(Text("" if cell is None else str(cell)) for cell in cells))


@leads_app.command("import")
def leads_import(
    file: Annotated[Path, typer.Argument(help="CRM export (CSV).", show_default=False)],
    tenant: TenantOption,
    now: NowOption = None,
) -> None:
    """Apply lead stages from a CRM export: columns partner, stage (lead|mql|sql|opportunity|
    won|lost), crm_id, lead_id or email, and optionally name, campaign, deal_value, currency,
    occurred_at and utm_source/medium/campaign/content/term. A lead is found by lead_id,
    then crm_id, then email. Importing the same file again changes nothing; rejected rows
    are listed with their line. Exit 1 when every row was rejected. A row without
    occurred_at happened at --now."""
    from partnercast.funnel import rollups
    from partnercast.funnel.crm_import import import_leads
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    rollups.install()
    with tenant_scope(tenant) as session:
        report = import_leads(session, file, now=moment)
    console.print(
        f"lead stages: {report.created} new leads, {report.updated} updated, "
        f"{report.unchanged} unchanged, {len(report.rejected)} rejected",
        highlight=False,
    )
    if report.rejected:
        table = Table("line", "reason", title="rejected rows")
        for rejection in report.rejected:
            _row(table, rejection.line, rejection.reason)
        console.print(table)
        if report.kept == 0:
            fail("every row was rejected; nothing imported")


@crm_app.command("secret")
def crm_secret(tenant: TenantOption, now: NowOption = None) -> None:
    """Make a new webhook signing secret (the old one stops working) and print it once."""
    from partnercast.core.settings import load_settings
    from partnercast.funnel.crm_secret import HEADERS, new_secret
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    settings = load_settings()
    with tenant_scope(tenant, settings) as session:
        secret = new_secret(session, settings, now=moment)
    console.print(secret, markup=False, highlight=False)
    console.print(
        f"POST /crm/{tenant}/leads (and /feedback/{tenant}) signed by the Standard Webhooks "
        f"scheme: {', '.join(HEADERS)} (docs/funnel.md). "
        "Keep the secret now: it is stored encrypted and will not be shown again.",
        markup=False,
        highlight=False,
        style="dim",
    )


def partners_link(
    external_id: Annotated[str, typer.Argument(help="The partner's external id.")],
    tenant: TenantOption,
    days: Annotated[int, typer.Option("--days", help="How many days the link works.")] = 30,
    now: NowOption = None,
) -> None:
    """Print a signed link to the partner's own results page (only its own numbers),
    working --days from --now."""
    from partnercast.core.settings import load_settings
    from partnercast.funnel.partner_link import results_url
    from partnercast.tenants.scope import tenant_scope

    settings = load_settings()
    with tenant_scope(tenant, settings) as session:
        url = results_url(session, settings, external_id, days=days, now=parse_now(now))
    console.print(url, markup=False, highlight=False, soft_wrap=True)


@spend_app.command("add")
def spend_add(
    partner: Annotated[str, typer.Argument(help="The partner's external id.")],
    campaign: Annotated[str, typer.Argument(help="The campaign key.")],
    amount: Annotated[float, typer.Argument(help="How much.")],
    tenant: TenantOption,
    kind: Annotated[str, typer.Option("--kind", help=f"One of {', '.join(SPEND_KINDS)}.")] = "mdf",
    currency: Annotated[str, typer.Option("--currency", help="ISO code, e.g. EUR.")] = "",
    note: Annotated[str, typer.Option("--note", help="What it paid for.")] = "",
    now: NowOption = None,
) -> None:
    """Record MDF or other investment in one partner's campaign."""
    from partnercast.funnel.spend import add_spend
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    with tenant_scope(tenant) as session:
        row = add_spend(
            session,
            partner,
            campaign,
            amount,
            kind=kind,
            currency=currency,
            note=note,
            now=moment,
        )
    console.print(f"spend {row.id}: {row.amount:,.2f} {row.currency} {row.kind}", highlight=False)


@spend_app.command("list")
def spend_list(
    tenant: TenantOption,
    partner: Annotated[str | None, typer.Option("--partner", help="Only this partner's.")] = None,
) -> None:
    """List spend rows."""
    from sqlmodel import select

    from partnercast.campaigns.models import Campaign
    from partnercast.funnel.spend import list_spend
    from partnercast.tenants.models import Partner
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        partners = {p.id: p.external_id for p in session.exec(select(Partner)).all()}
        campaigns = {c.id: c.key for c in session.exec(select(Campaign)).all()}
        pid = (get_partner(session, partner, where="--partner").id or 0) if partner else None
        rows = list_spend(session, partner_id=pid)
    table = Table("id", "partner", "campaign", "kind", "amount", "currency", "note")
    table.title = f"{len(rows)} spend rows, total {sum(r.amount for r in rows):,.2f}"
    for r in rows:
        _row(
            table,
            r.id,
            partners.get(r.partner_id),
            campaigns.get(r.campaign_id),
            r.kind,
            f"{r.amount:,.2f}",
            r.currency,
            r.note,
        )
    console.print(table)


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _fmt_fine_rate(value: float | None) -> str:
    """A rate whose tenths of a percent matter: mailbox providers act on 0.1 to 0.3%."""
    return "-" if value is None else f"{value:.2%}"


def _fmt_roi(row: FunnelRow) -> Text:
    if row.roi_pipeline is None:
        return Text("n/a", style="dim")
    mark = "✓" if row.meets_target else "✗"
    return Text(f"{row.roi_pipeline:.1f}x {mark}", style="green" if row.meets_target else "red")


def _tenant_of(ctx: typer.Context, tenant: str | None) -> str:
    """The subcommand's --tenant, or the one given before it (`metrics --tenant T fetch`)."""
    parent = ctx.parent.params.get("tenant") if ctx.parent is not None else None
    chosen = tenant or parent
    if not chosen:
        raise UserError("name the tenant with --tenant (or PARTNERCAST_TENANT)")
    return chosen


@metrics_app.callback(invoke_without_command=True)
def metrics_main(
    ctx: typer.Context,
    tenant: OptionalTenant = None,
    campaign: CampaignOption = None,
    by: ByOption = "partner",
    partner: PartnerOption = None,
    rebuild: RebuildOption = False,
) -> None:
    """The funnel, social and search numbers, pipeline, won value and ROI against 20x."""
    if ctx.invoked_subcommand is not None:
        return
    show_metrics(_tenant_of(ctx, tenant), campaign, by, partner, rebuild)


@metrics_app.command("show")
def metrics_show(
    ctx: typer.Context,
    tenant: OptionalTenant = None,
    campaign: CampaignOption = None,
    by: ByOption = "partner",
    partner: PartnerOption = None,
    rebuild: RebuildOption = False,
) -> None:
    """The funnel, the same as `partnercast metrics`."""
    show_metrics(_tenant_of(ctx, tenant), campaign, by, partner, rebuild)


@metrics_app.command("fetch")
def metrics_fetch(
    ctx: typer.Context,
    tenant: OptionalTenant = None,
    days: Annotated[
        int, typer.Option("--days", min=1, help="Dispatches done in the last N days.")
    ] = 30,
    now: NowOption = None,
) -> None:
    """Ask X, LinkedIn and Google Ads for the numbers of recent posts and ads, and record
    them."""
    from partnercast.core.settings import load_settings
    from partnercast.funnel.channel_metrics import failure_summary, fetch_tenant
    from partnercast.plugins.manager import default_plugins
    from partnercast.plugins.progress import progress_bar
    from partnercast.tenants.scope import tenant_engine

    moment = parse_now(now)
    settings = load_settings()
    with (
        tenant_engine(_tenant_of(ctx, tenant), settings) as (engine, tenant_id),
        progress_bar("reading the networks' numbers", console=err_console) as advance,
    ):
        report = fetch_tenant(
            engine, settings, default_plugins(), tenant_id, moment, days=days, on_progress=advance
        )
    console.print(
        f"{report.found} posts and ads of the last {days} days; {report.dispatches} read "
        f"through {report.accounts} accounts: {report.events} new metric events",
        highlight=False,
    )
    if report.by_kind:
        table = Table(title="added to the funnel")
        table.add_column("metric")
        table.add_column("added", justify="right")
        for kind, value in sorted(report.by_kind.items()):
            table.add_row(kind, f"{value:,.2f}" if kind.startswith("ad_") else f"{value:,.0f}")
        console.print(table)
    for where in report.reconnect:
        console.print(f"needs reconnecting: {where}", highlight=False)
    for line in failure_summary(report):
        console.print(f"not fetched: {line}", markup=False, highlight=False)


@metrics_app.command("rebuild")
def metrics_rebuild(ctx: typer.Context, tenant: OptionalTenant = None) -> None:
    """Recompute the rollups from the event log (after a bulk import around the ORM)."""
    from partnercast.funnel import rollups
    from partnercast.plugins.progress import progress_bar
    from partnercast.tenants.scope import tenant_scope

    with (
        tenant_scope(_tenant_of(ctx, tenant)) as session,
        progress_bar("rebuilding the rollups", console=err_console) as advance,
    ):
        rollups.rebuild_rollups(session, on_progress=advance)
    console.print("rollups rebuilt from the event log", highlight=False)


def show_metrics(
    tenant: str, campaign: str | None, by: str, partner: str | None, rebuild: bool
) -> None:
    """Print the funnel tables of ``tenant``."""
    from sqlmodel import select

    from partnercast.campaigns.models import Campaign
    from partnercast.core.cli_tables import Column, print_table
    from partnercast.funnel import rollups
    from partnercast.funnel.metrics import ROI_TARGET, funnel, spend_currencies, total
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    if by not in GROUPINGS:
        raise UserError(f"must be one of {', '.join(GROUPINGS)}", where="--by")
    with tenant_scope(tenant) as session:
        if rebuild:
            rollups.rebuild_rollups(session)
        campaign_id = None
        if campaign:
            found = session.exec(select(Campaign).where(Campaign.key == campaign)).first()
            if found is None:
                raise NotFound(f"no campaign {campaign!r}", where="--campaign")
            campaign_id = found.id
        partner_id = None
        if partner:
            partner_id = get_partner(session, partner, where="--partner").id
        rows = funnel(session, by=by, campaign_id=campaign_id, partner_id=partner_id)
        currencies = spend_currencies(session)
    rows = [*rows, total(rows)] if by != "total" and len(rows) != 1 else rows
    scope = f" by {by}" + (f", campaign {campaign}" if campaign else "")
    scope += f", partner {partner}" if partner else ""
    for title, header, lines in _metric_tables(scope, rows):
        columns = [Column(by, "key"), *(Column(name) for name in header)]
        print_table(console, title, columns, lines)
    console.print(
        f"ROI = pipeline value / spend; programme target {ROI_TARGET:.0f}x (✓ met, ✗ not met)",
        highlight=False,
    )
    named = [currency for currency in currencies if currency]
    if len(named) > 1 or (named and "" in currencies):
        shown = ", ".join(currency or "(none given)" for currency in currencies)
        err_console.print(
            f"warning: spend is recorded in more than one currency ({shown}); spend and ROI "
            "add the amounts as they are",
            markup=False,
            highlight=False,
        )
    if not any(row.has_channel_metrics for row in rows):
        console.print(
            "no social or search numbers yet: `partnercast metrics fetch` asks the networks",
            markup=False,
            highlight=False,
            style="dim",
        )


MetricTable = tuple[str, tuple[str, ...], list[tuple[Text | str, ...]]]
"""(title, numeric column names, rows of cells: a Text label then strings)."""


def _metric_tables(scope: str, rows: list[FunnelRow]) -> list[MetricTable]:
    """The funnel's tables, one :data:`MetricTable` each."""
    from partnercast.funnel.metrics import ENGAGEMENT, MARKETING, SALES

    tables: list[MetricTable] = [
        (
            f"marketing funnel{scope}",
            (*MARKETING, "complaint rate"),
            [
                (
                    Text(r.label),
                    *(str(r.counts.get(m, 0)) for m in MARKETING),
                    _fmt_fine_rate(r.rates["complaint rate"]),
                )
                for r in rows
            ],
        ),
        (
            f"email engagement{scope} (opened, clicked: unique)",
            (*ENGAGEMENT, "open rate", "click rate"),
            [
                (
                    Text(r.label),
                    *(str(r.counts.get(m, 0)) for m in ENGAGEMENT),
                    _fmt_rate(r.rates["open rate"]),
                    _fmt_rate(r.rates["click rate"]),
                )
                for r in rows
            ],
        ),
    ]
    if any(row.has_channel_metrics for row in rows):
        tables.append(
            (
                f"social and search{scope} (as the networks count them)",
                ("impressions", "engaged", "eng. rate", "clicks", "ad cost", "conv."),
                [
                    (
                        Text(r.label),
                        f"{r.counts.get('impressions', 0):,}",
                        f"{r.counts.get('engagements', 0):,}",
                        _fmt_rate(r.rates["engagement rate"]),
                        f"{r.counts.get('link_clicks', 0):,}",
                        f"{r.ad_cost:,.2f}",
                        f"{r.ad_conversions:,.1f}",
                    )
                    for r in rows
                ],
            )
        )
    tables += [
        (
            f"sales funnel{scope}",
            (*SALES, "MQL>SQL"),
            [
                (
                    Text(r.label),
                    *(str(r.counts.get(m, 0)) for m in SALES),
                    _fmt_rate(r.rate("sql", "mql")),
                )
                for r in rows
            ],
        ),
        (
            f"return{scope}",
            ("pipeline", "won value", "spend", "ROI"),
            [
                (
                    Text(r.label),
                    f"{r.pipeline:,.0f}",
                    f"{r.won_value:,.0f}",
                    "-" if r.spend is None else f"{r.spend:,.0f}",
                    _fmt_roi(r),
                )
                for r in rows
            ],
        ),
    ]
    return tables


def score_command(
    tenant: TenantOption,
    partner: Annotated[str | None, typer.Argument(help="One partner (all when left out).")] = None,
) -> None:
    """The contender score (0-100) with each component's weight and value."""
    from partnercast.core.cli_tables import Column, print_table
    from partnercast.funnel.score import score_partners
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        cards = score_partners(session, partner)
    if partner and not cards:
        raise NotFound(f"no partner {partner!r}")
    if partner:
        card = cards[0]
        print_table(
            console,
            f"{card.external_id} {card.name}: {card.score:.0f} / 100",
            [
                Column("component", "key"),
                Column("group", "word"),
                Column("weight"),
                Column("points"),
                Column("why", "text"),
            ],
            [
                (c.name, c.group, f"{c.weight:.0f}", f"{c.points:.1f}", c.detail)
                for c in card.components
            ],
        )
        console.print(Text(f"what holds it back: {card.weakest.explain()}"))
        return
    print_table(
        console,
        "contender scores",
        [
            Column("partner", "key"),
            Column("name", "text"),
            Column("score"),
            Column("what holds it back", "text"),
        ],
        [
            (c.external_id, c.name, f"{c.score:.0f}", f"{c.weakest.name}: {c.weakest.detail}")
            for c in cards
        ],
    )


def report_command(
    tenant: TenantOption,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the reports into.")] = Path(
        "reports"
    ),
    partner: Annotated[
        str | None,
        typer.Option("--partner", help="Only this partner's report, written into --out itself."),
    ] = None,
    now: NowOption = None,
) -> None:
    """Write the programme report and one report per partner (HTML, PNG charts, CSV)."""
    from partnercast.funnel.reports import write_partner_report, write_reports
    from partnercast.plugins.progress import progress_bar
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    output_folder(out, where="--out")
    try:
        if partner is not None:
            with tenant_scope(tenant) as session:
                page = write_partner_report(session, partner, out, now=moment)
            console.print(f"{partner}'s report: {page}", highlight=False, soft_wrap=True)
            return
        with (
            tenant_scope(tenant) as session,
            progress_bar("writing the reports", console=err_console) as advance,
        ):
            files = write_reports(session, out, now=moment, on_progress=advance)
    except OSError as error:  # a read-only folder, a full disk, a file where a folder goes
        raise UserError(f"cannot write {error.filename}: {error.strerror}", where="--out") from None
    console.print(
        f"programme report: {files.programme}", markup=False, highlight=False, soft_wrap=True
    )
    console.print(
        f"{len(files.partners)} partner reports under {out / 'partners'}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if files.missing_glyphs:
        shown = " ".join(sorted(files.missing_glyphs)[:12])
        err_console.print(
            f"note: the charts draw {len(files.missing_glyphs)} characters of names as boxes "
            f"({shown}): no installed font has them; install one that does (Debian: "
            "fonts-noto-cjk for Japanese, Chinese and Korean, fonts-symbola for emoji)",
            markup=False,
            highlight=False,
        )
