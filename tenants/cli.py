"""Commands for tenants, partners, contacts and segments."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Mount this folder's commands on the root app."""
