"""Channel accounts: a partner's connection to a channel, with its secrets encrypted at rest.

A channel's ``Account`` pydantic model marks secret fields as ``SecretStr``. Those are
stored together as one Fernet token (``secrets``); every other field is stored as plain
JSON (``settings``), so a concierge can see where an account points without decrypting.
The plain values of secrets exist only inside :func:`load_account`'s result, as
``SecretStr`` again, which hides them from repr, logs and JSON.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from partnercast.core.errors import UserError
from partnercast.core.models import HELD_FOR_RECONNECT, Dispatch
from partnercast.core.secrets import SecretBox
from partnercast.core.tenancy import TenantOwned

CONNECTED = "connected"
NEEDS_RECONNECT = "needs_reconnect"
RECONNECT_REASON = "account needs reconnecting"
"""How the ``last_error`` of a dispatch failed because the partner's account was refused,
flagged or missing reads (campaigns/dispatching.py, built by :func:`reconnect_reason`).
Such a dispatch is marked ``held_for = HELD_FOR_RECONNECT`` (what :func:`held_dispatches`
looks for, not this text) and held until the account is reconnected (:func:`resume_held`)."""
RESUMED = "resumed: the partner's account was reconnected"


class ChannelAccount(TenantOwned, SQLModel, table=True):
    """One partner's account on one channel (at most one per tenant, partner and channel)."""

    __tablename__ = "channel_account"
    __table_args__ = (UniqueConstraint("tenant_id", "partner_id", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    channel: str = Field(max_length=64)
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    secrets: str = Field(default="", sa_column=Column(Text, nullable=False))
    status: str = Field(default=CONNECTED, max_length=20)
    last_error: str = Field(default="", max_length=2000)
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:  # the encrypted token is noise, and stays out of logs
        return (
            f"ChannelAccount(id={self.id}, partner_id={self.partner_id}, "
            f"channel={self.channel!r}, status={self.status!r})"
        )


def reconnect_reason(channel_title: str, detail: str) -> str:
    """The ``last_error`` of a dispatch held for the partner's account on a channel."""
    return f"the partner's {channel_title} {RECONNECT_REASON}: {detail}".rstrip(": ")


def secret_fields(model: type[BaseModel]) -> list[str]:
    """Names of the fields a channel's Account model types as SecretStr."""
    return [
        name for name, info in model.model_fields.items() if SecretStr in _types_of(info.annotation)
    ]


def _types_of(annotation: Any) -> set[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return {annotation}
    return {kind for arg in args for kind in _types_of(arg)}


def split_account(account: BaseModel) -> tuple[dict[str, Any], dict[str, str]]:
    """(plain settings as JSON values, secret values in clear) of a validated account."""
    secret_names = set(secret_fields(type(account)))
    plain = account.model_dump(mode="json", exclude=secret_names)
    secrets = {
        name: value.get_secret_value()
        for name in secret_names
        if isinstance(value := getattr(account, name), SecretStr)
    }
    return plain, secrets


def validate_account(model: type[BaseModel], values: dict[str, Any], channel: str) -> BaseModel:
    """Build the channel's Account, or a one-line UserError that never echoes a value."""
    try:
        return model(**values)
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "account"
        count = error.error_count()
        more = f" (and {count - 1} more)" if count > 1 else ""
        raise UserError(f"{channel} account {field}: {first['msg']}{more}") from None


def find_account(session: Session, *, partner_id: int, channel: str) -> ChannelAccount | None:
    return session.exec(
        select(ChannelAccount).where(
            ChannelAccount.partner_id == partner_id, ChannelAccount.channel == channel
        )
    ).first()


def connect_account(
    session: Session,
    *,
    partner_id: int,
    channel: str,
    account: BaseModel,
    box: SecretBox,
    now: datetime,
) -> ChannelAccount:
    """Store (or replace) a partner's account; it is connected again from ``now`` on.

    The dispatches held for the account are not touched here: the caller that knows
    which cycles are still open resumes them with :func:`resume_held`
    (``partnercast accounts connect`` does).
    """
    plain, secrets = split_account(account)
    row = find_account(session, partner_id=partner_id, channel=channel)
    if row is None:
        row = ChannelAccount(partner_id=partner_id, channel=channel, created_at=now, updated_at=now)
    row.settings = plain
    row.secrets = box.seal(secrets)
    row.status, row.last_error, row.updated_at = CONNECTED, "", now
    session.add(row)
    session.flush()
    return row


def held_dispatches(
    session: Session, *, partner_id: int, channel: str, cycle_ids: Collection[int] | None = None
) -> list[Dispatch]:
    """The partner's dispatches on ``channel`` that failed for want of a working account
    (refused, flagged or missing), in the session's tenant; with ``cycle_ids``, only
    those in these cycles."""
    query = select(Dispatch).where(
        Dispatch.partner_id == partner_id,
        Dispatch.channel == channel,
        Dispatch.state == "failed",
        Dispatch.held_for == HELD_FOR_RECONNECT,
    )
    if cycle_ids is not None:
        query = query.where(col(Dispatch.cycle_id).in_(cycle_ids))
    return list(session.exec(query).all())


def resume_held(dispatches: Sequence[Dispatch], now: datetime) -> int:
    """Make held dispatches due at ``now``, as new (no attempts counted); returns how many.

    A resumed dispatch goes through the dispatcher again: approval, send window, rate
    limits, and for a post the network lookup when an earlier attempt may have posted.
    Its failed-dispatch concierge task closes on the next scan. Resume only dispatches
    of cycles still open: the dispatcher does not check that a cycle has ended.
    """
    for dispatch in dispatches:
        dispatch.state, dispatch.attempts, dispatch.scheduled_at = "pending", 0, now
        dispatch.finished_at, dispatch.last_error = None, RESUMED
        dispatch.held_for = ""
        dispatch.lease_owner = dispatch.lease_until = None
    return len(dispatches)


def load_account(row: ChannelAccount, model: type[BaseModel], box: SecretBox) -> BaseModel:
    """The channel's Account model from a stored row (secrets decrypted into SecretStr)."""
    return validate_account(model, {**row.settings, **box.open(row.secrets)}, row.channel)


def mark_needs_reconnect(row: ChannelAccount, reason: str, *, now: datetime) -> None:
    """The channel refused the account at ``now``: the partner must connect it again."""
    row.status, row.last_error, row.updated_at = NEEDS_RECONNECT, reason[:2000], now


def rotate_secrets(session: Session, box: SecretBox) -> int:
    """Re-encrypt every account's secrets with the first key; returns how many rows.

    ``session`` must be a system session: rotation crosses every tenant.
    """
    rows = session.exec(select(ChannelAccount)).all()
    for row in rows:
        if row.secrets:
            row.secrets = box.rotate(row.secrets)
            session.add(row)
    return len(rows)
