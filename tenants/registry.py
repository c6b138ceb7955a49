"""Tenants (vendors): creating and listing them. Tenants own no tenant-scoped rows here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from partnercast.core.errors import UserError
from partnercast.tenants import values
from partnercast.tenants.models import Tenant

BRAND_KEYS = ("legal_name", "postal_address", "logo_url", "primary_color", "secondary_color")


def create_tenant(
    session: Session,
    slug: str,
    *,
    name: str,
    locale: str = "en",
    brand: dict[str, str] | None = None,
    now: datetime,
) -> Tenant:
    """A new tenant, created ``now``; a taken slug or a bad value is a UserError.

    ``brand`` takes the keys in :data:`BRAND_KEYS`; empty values are left out.
    """
    given = {key: value.strip() for key, value in (brand or {}).items() if value and value.strip()}
    unknown = sorted(set(given) - set(BRAND_KEYS))
    if unknown:
        raise UserError(f"unknown brand keys {', '.join(unknown)} (known: {', '.join(BRAND_KEYS)})")
    problems: list[str] = []
    if not name.strip():
        problems.append("name is empty")
    checks: dict[str, Callable[[], str]] = {
        "slug": lambda: values.slug(slug),
        "locale": lambda: values.locale_id(locale),
    }
    if "logo_url" in given:
        checks["logo_url"] = lambda: values.web_url(given["logo_url"], "logo_url")
    for key in ("primary_color", "secondary_color"):
        if key in given:
            checks[key] = partial(values.color, given[key], key)
    checked: dict[str, str] = {}
    for key, check in checks.items():
        try:
            checked[key] = check()
        except values.BadValue as error:
            problems.append(str(error))
    if problems:
        raise UserError("; ".join(problems))
    if session.exec(select(Tenant).where(Tenant.slug == slug)).first() is not None:
        raise UserError(f"tenant {slug!r} already exists")
    brand_values = {**given, **{key: checked[key] for key in checked if key in BRAND_KEYS}}
    tenant = Tenant(
        slug=slug,
        name=name.strip(),
        default_locale=checked["locale"],
        brand=brand_values,
        created_at=now,
    )
    session.add(tenant)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise UserError(f"tenant {slug!r} already exists") from None
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    """Every tenant, by slug."""
    return list(session.exec(select(Tenant).order_by(Tenant.slug)).all())
