"""``partnercast microsite ...``: the microsite commands of the web layer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from partnercast.core.cli import TenantOption, console
from partnercast.tenants.scope import tenant_engine


def export(
    campaign: Annotated[str, typer.Argument(help="Key of the campaign.")],
    partner: Annotated[str, typer.Argument(help="External id of the partner.")],
    tenant: TenantOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the page into.")],
    locale: Annotated[str, typer.Option(help="Locale of the page (default: the partner's).")] = "",
) -> None:
    """Export a partner's approved landing page as static files the partner can host."""
    from partnercast.core.settings import load_settings
    from partnercast.web.export import export_page

    settings = load_settings()
    with tenant_engine(tenant, settings) as (engine, tenant_id):
        result = export_page(engine, settings, tenant_id, campaign, partner, out, locale=locale)
    for path in result.files:
        console.print(f"wrote {path}")
    console.print(f"the form posts to {result.form_action}")


def register(app: typer.Typer) -> None:
    """Mount ``microsite`` on the root app."""
    microsite = typer.Typer(help="Partners' landing pages.", no_args_is_help=True)
    microsite.command("export")(export)
    app.add_typer(microsite, name="microsite")
