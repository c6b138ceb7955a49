"""``partnercast microsite export``: the microsite's command (the register_commands hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from partnercast.plugins.cli import NowOption, parse_now
from partnercast.plugins.host import open_host


def export(
    campaign: Annotated[str, typer.Argument(help="Key of the campaign.")],
    partner: Annotated[str, typer.Argument(help="External id of the partner.")],
    tenant: Annotated[
        str,
        typer.Option(
            "--tenant",
            "-t",
            envvar="PARTNERCAST_TENANT",
            help="Slug of the tenant (vendor) to act as.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the page into.")],
    locale: Annotated[str, typer.Option(help="Locale of the page (default: the partner's).")] = "",
    now: NowOption = None,
) -> None:
    """Export a partner's approved landing page as static files the partner can host."""
    from partnercast.channels.microsite.export import NoLivePage, export_page

    instant = parse_now(now)
    with open_host() as host:
        host.tenant_id(tenant)  # an unknown tenant is one line, as in every command
        try:
            result = export_page(host, tenant, campaign, partner, out, now=instant, locale=locale)
        except NoLivePage as error:
            typer.secho(f"error: {error}", err=True, fg="red")
            raise typer.Exit(1) from error
    for path in result.files:
        typer.echo(f"wrote {path}")
    typer.echo(f"the form posts to {result.form_action}")


def register(app: typer.Typer) -> None:
    """Mount ``microsite`` on the root app, in the help's Campaigns panel."""
    microsite = typer.Typer(help="Partners' landing pages.", no_args_is_help=True)
    microsite.command("export")(export)
    app.add_typer(microsite, name="microsite", rich_help_panel="Campaigns")
