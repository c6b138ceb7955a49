"""Commands for campaign folders: validate, load, list, show.

``validate`` needs no database. The others act as ``--tenant``, in a session scoped to it.
Problems and other user errors are printed by the root group on stderr, one line each,
with exit code 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from partnercast.core.cli import NowOption, TenantOption, console, parse_now

if TYPE_CHECKING:
    from partnercast.campaigns.models import CampaignVersion
    from partnercast.campaigns.spec import CampaignSpec


campaign_app = typer.Typer(help="Campaigns as code: folders of campaign.yaml and templates.")

FolderArgument = Annotated[
    Path, typer.Argument(help="The campaign folder (campaign.yaml and templates/).")
]


def register(app: typer.Typer) -> None:
    """Mount this folder's commands on the root app."""
    app.add_typer(campaign_app, name="campaign", no_args_is_help=True)


def _channel_contents() -> dict[str, Any]:
    """Content model of every installed channel, so touch content is checked at load."""
    from partnercast.plugins.manager import channel_content_models

    return channel_content_models()


def _channels() -> dict[str, Any]:
    """Every installed channel class, by name: its template suffix and its own rules."""
    from partnercast.plugins.manager import installed_channels

    return installed_channels()


def _read(folder: Path) -> Any:
    """The checked campaign folder, rendered for a sample partner with the plugins' filters."""
    from partnercast.campaigns.loader import read_campaign
    from partnercast.plugins.manager import default_plugins

    filters = default_plugins().template_filters()
    return read_campaign(folder, _channels(), _channel_contents(), filters=filters)


def _print_warnings(warnings: Sequence[str]) -> None:
    for warning in warnings:
        console.print(
            f"[yellow]warning:[/] {escape(warning)}", markup=True, highlight=False, soft_wrap=True
        )


@campaign_app.command("validate")
def validate(folder: FolderArgument) -> None:
    """Check a campaign folder, render it for a sample partner, print every problem.

    No database needed. Every touch is rendered in every locale and variant, so a
    template that breaks only when rendered (or whose MJML does not compile) is a problem
    too, with its file and line.
    """
    loaded = _read(folder)
    spec = loaded.spec
    _print_warnings(loaded.warnings)
    console.print(
        f"ok: {spec.key} v? — {len(spec.touches)} touches, locales {', '.join(spec.locales)}",
        highlight=False,
    )


@campaign_app.command("load")
def load(folder: FolderArgument, tenant: TenantOption, now: NowOption = None) -> None:
    """Store a campaign folder as the tenant's next version (unchanged content: no-op).

    The folder is checked and rendered for a sample partner first, as by ``validate``:
    a campaign with any problem is not stored.
    """
    from partnercast.campaigns.send_windows import wave_region_warnings
    from partnercast.campaigns.store import store_campaign
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)  # when this version is stored
    loaded = _read(folder)
    with tenant_scope(tenant) as session:
        result = store_campaign(session, loaded, now=moment)
        warnings = wave_region_warnings(session, loaded.spec)
    _print_warnings([*loaded.warnings, *warnings])
    key, number = result.campaign.key, result.version.number
    if result.created:
        console.print(f"{key}: stored version {number}", highlight=False)
    else:
        console.print(f"{key}: unchanged (version {number})", highlight=False)


@campaign_app.command("list")
def list_command(tenant: TenantOption) -> None:
    """The tenant's campaigns and their latest version."""
    from partnercast.campaigns.store import campaign_versions, list_campaigns
    from partnercast.tenants.scope import tenant_scope

    table = Table("key", "name", "versions", "latest", "cycle days", title="campaigns")
    with tenant_scope(tenant) as session:
        for campaign in list_campaigns(session):
            versions = campaign_versions(session, campaign)
            latest = versions[-1] if versions else None
            table.add_row(
                campaign.key,
                escape(campaign.name),
                str(len(versions)),
                str(latest.number) if latest else "-",
                str(latest.cycle_days) if latest else "-",
            )
    console.print(table)


@campaign_app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="The campaign's key.")], tenant: TenantOption
) -> None:
    """One campaign: its versions, and the touches of its latest version."""
    from partnercast.campaigns.spec import localize
    from partnercast.campaigns.store import (
        campaign_versions,
        get_campaign,
        latest_version,
        version_spec,
    )
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        campaign = get_campaign(session, key)
        versions = campaign_versions(session, campaign)
        spec = version_spec(latest_version(session, campaign))
    console.print(f"[bold]{escape(spec.name)}[/] ({campaign.key})", markup=True, highlight=False)
    console.print(
        f"{spec.cycle_days}-day cycle · locales {', '.join(spec.locales)} · "
        f"segments {', '.join(spec.segments)} · "
        f"auto-approval {'allowed' if spec.auto_approve_allowed else 'not allowed'}",
        highlight=False,
    )
    if spec.send_window or spec.waves:
        console.print(_timing_line(spec), highlight=False)
    console.print(_versions_table(versions, campaign.latest_version_id))
    touches = Table("day", "touch", "channel", "template", "subject", title="touches (latest)")
    windowed = any(spec.window_for(touch) for touch in spec.touches)
    if windowed:
        touches.add_column("send window (local)")
    for touch in sorted(spec.touches, key=lambda t: t.day):
        subject = localize(touch.subject, spec.default_locale, spec.default_locale) or ""
        window = spec.window_for(touch)
        extra = [window.describe() if window else "any time"] if windowed else []
        touches.add_row(
            str(touch.day), touch.key, touch.channel, touch.template, escape(subject), *extra
        )
    console.print(touches)


def _timing_line(spec: CampaignSpec) -> str:
    """Send window and waves in one line (times are each partner's local time)."""
    parts = []
    if spec.send_window:
        parts.append(f"send window {spec.send_window.describe()} in each partner's time zone")
    if spec.waves:
        waves = ", ".join(f"{w.label()} +{w.offset_days}d" for w in spec.waves)
        parts.append(f"waves {waves}")
    return " · ".join(parts)


def _versions_table(versions: list[CampaignVersion], latest_id: int | None) -> Table:
    table = Table("version", "created", "cycle days", "content hash", "", title="versions")
    for version in versions:
        table.add_row(
            str(version.number),
            f"{version.created_at:%Y-%m-%d %H:%M}",
            str(version.cycle_days),
            version.content_hash[:12],
            "latest" if version.id == latest_id else "",
        )
    return table
