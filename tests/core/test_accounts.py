"""Channel accounts: secrets encrypted at rest, key rotation, the CLI, and the dispatcher
using a partner's connected account (and marking it for reconnection when refused)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import START, World, build_world, respond, run_days, start

from partnercast.channels.email.channel import EmailAccount
from partnercast.core import accounts
from partnercast.core.errors import UserError
from partnercast.core.models import Dispatch
from partnercast.core.secrets import SecretBox, SecretsError, secret_box
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import system_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.models import Partner

PASSWORD = "relay-password-123"


def test_secrets_round_trip_and_rotate_to_a_new_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox([old]).seal({"password": PASSWORD})
    assert PASSWORD not in token
    both = SecretBox([new, old])
    assert both.open(token) == {"password": PASSWORD}
    rotated = both.rotate(token)
    assert SecretBox([new]).open(rotated) == {"password": PASSWORD}
    with pytest.raises(SecretsError, match="cannot be decrypted"):
        SecretBox([new]).open(token)
    assert "****" in repr(both) and new not in repr(both)


def test_no_key_is_derived_from_the_secret_key(tmp_path: Path) -> None:
    """Without encryption keys nothing is sealed (the old fallback derived one from the
    secret key, which was published): one line saying how to make them."""
    signing_only = {"secret_key": SecretStr("k" * 40), "encryption_keys": []}
    settings = load_settings(tmp_path / "none.toml", require_keys=False, **signing_only)
    with pytest.raises(UserError, match="no encryption key configured: run `partnercast init`"):
        secret_box(settings)
    with pytest.raises(UserError, match="no encryption key configured"):
        load_settings(tmp_path / "none.toml", **signing_only)
    key = SecretStr(Fernet.generate_key().decode())
    settings = load_settings(tmp_path / "none.toml", **signing_only | {"encryption_keys": [key]})
    assert secret_box(settings).open(secret_box(settings).seal({"a": "b"})) == {"a": "b"}


def test_a_bad_key_is_one_clear_error() -> None:
    with pytest.raises(UserError, match="not a Fernet key"):
        SecretBox(["too-short"])


def test_split_keeps_secrets_out_of_the_plain_settings() -> None:
    account = EmailAccount(
        host="h", from_email="a@b.example", from_name="A", password=SecretStr(PASSWORD)
    )
    plain, secrets = accounts.split_account(account)
    assert "password" not in plain and plain["host"] == "h"
    assert secrets == {"password": PASSWORD}
    assert accounts.secret_fields(EmailAccount) == ["password"]


# --- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def partner_world(engine: Engine, tenant_a: int) -> int:
    with tenant_session(engine, tenant_a) as session:
        partner = Partner(external_id="P001", name="Acme", created_at=utcnow(), updated_at=utcnow())
        session.add(partner)
    return tenant_a


def test_connect_prompts_for_the_secret_stores_it_encrypted_and_lists_stars(
    cli, engine: Engine, partner_world: int
) -> None:
    connect = cli.runner.invoke(
        __import__("partnercast.cli", fromlist=["build_app"]).build_app(),
        [
            "accounts", "connect", "P001", "email", "--tenant", "vendor-a",
            "--set", "host=smtp.partner.example", "--set", "port=587",
            "--set", "username=relay", "--set", "from_email=ann@partner.example",
            "--set", "from_name=Ann",
        ],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert connect.exit_code == 0, connect.stderr
    assert PASSWORD not in connect.stdout and "password=****" in connect.stdout
    listing = cli("accounts", "list", "--tenant", "vendor-a")
    assert "smtp.partner.example" in listing.stdout and "****" in listing.stdout
    assert PASSWORD not in listing.stdout
    with engine.connect() as connection:
        raw = connection.execute(text("select settings, secrets from channel_account")).one()
    assert PASSWORD not in str(raw) and "587" in str(raw[0])


def test_the_listing_cuts_nothing_at_80_columns(
    cli, partner_world: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a pipe gets: long settings and errors fold onto more lines, never end in '…'."""
    monkeypatch.setenv("COLUMNS", "80")
    host = "smtp-relay.eu-central.mail.partner-of-northwind.example"
    cli(
        "accounts", "connect", "P001", "email", "--tenant", "vendor-a",
        "--set", f"host={host}", "--set", f"password={PASSWORD}",
        "--set", "from_email=marketing.team@partner-of-northwind.example", "--set", "from_name=A",
    )  # fmt: skip
    listing = cli("accounts", "list", "--tenant", "vendor-a").stdout
    assert "…" not in listing and max(len(line) for line in listing.splitlines()) <= 80
    cells = "".join(line.split("│")[4].strip() for line in listing.splitlines() if "│" in line)
    assert f"host={host}" in cells and "secrets=****" in cells
    assert PASSWORD not in listing


def test_a_bad_setting_is_one_line_that_never_echoes_a_value(cli, partner_world: int) -> None:
    result = cli(
        "accounts", "connect", "P001", "email", "--tenant", "vendor-a",
        "--set", "host=h", "--set", "port=not-a-port", "--set", f"password={PASSWORD}",
        "--set", "from_email=a@b.example", "--set", "from_name=A",
        expect=1,
    )  # fmt: skip
    assert "email account port:" in result.stderr
    assert "not-a-port" not in result.stderr and PASSWORD not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_rotate_keys_re_encrypts_every_tenant(
    cli, engine: Engine, partner_world: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("PARTNERCAST_ENCRYPTION_KEYS", f'["{old}"]')
    cli(
        "accounts", "connect", "P001", "email", "--tenant", "vendor-a", "--set", "host=h",
        "--set", f"password={PASSWORD}", "--set", "from_email=a@b.example", "--set", "from_name=A",
    )  # fmt: skip
    monkeypatch.setenv("PARTNERCAST_ENCRYPTION_KEYS", f'["{new}", "{old}"]')
    assert "1 accounts" in cli("accounts", "rotate-keys").stdout
    with system_session(engine, reason="test reads the stored token") as session:
        token = session.exec(select(accounts.ChannelAccount)).one().secrets
    assert SecretBox([new]).open(token) == {"password": PASSWORD}


# --- the dispatcher ---------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def relay() -> Iterator[SmtpSink]:
    """The partners' own relay, which wants a login."""
    with SmtpSink(logins={"relay": PASSWORD}) as running:
        yield running


@pytest.fixture
def world(engine: Engine, tmp_path: Path, sink: SmtpSink) -> World:
    return build_world(engine, tmp_path / "world", sink.port)


def _connect(world: World, external_id: str, port: int, password: str) -> None:
    account = EmailAccount(
        host="127.0.0.1",
        port=port,
        username="relay",
        password=SecretStr(password),
        from_email=f"{external_id.lower()}@relay.example",
        from_name=external_id,
        timeout_seconds=5,
    )
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.external_id == external_id)).one()
        accounts.connect_account(
            session,
            partner_id=partner.id or 0,
            channel="email",
            account=account,
            box=secret_box(world.settings),
            now=utcnow(),
        )


def test_dispatches_use_the_connected_account_and_a_refused_one_needs_reconnecting(
    world: World, sink: SmtpSink, relay: SmtpSink
) -> None:
    respond(world, {"P001": "approve", "P005": "approve"})
    _connect(world, "P001", relay.port, "wrong-password-1")
    _connect(world, "P005", relay.port, PASSWORD)
    start(world)
    run_days(world, 0, 46)

    senders = {str(message["From"]) for message in relay.received.messages}
    assert senders == {"P005 <p005@relay.example>"}
    assert relay.received.count > 0 and sink.received.count == 0
    with tenant_session(world.engine, world.tenant_id) as session:
        p001 = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
        row = accounts.find_account(session, partner_id=p001.id or 0, channel="email")
        failed = session.exec(select(Dispatch).where(Dispatch.partner_id == p001.id)).all()
        done = session.exec(select(Dispatch).where(Dispatch.state == "done")).all()
    assert row is not None and row.status == accounts.NEEDS_RECONNECT
    assert "SMTP login refused" in row.last_error
    assert {d.state for d in failed} == {"failed"}
    assert all("reconnect" in d.last_error for d in failed)
    # the first touch tried and was refused; the later ones failed fast, without a login
    assert len(failed) > 1 and all(d.partner_id != p001.id for d in done)
    # P001's first touch was refused at login; its later touches failed fast, never
    # reaching the relay: two sessions (the account's two connections) per P005 touch,
    # plus that one refused login (tried on one connection only).
    assert relay.received.sessions == 2 * len(done) + 1


def test_a_refused_relay_holds_the_partners_touches_until_reconnected(
    world: World, sink: SmtpSink, relay: SmtpSink, cli
) -> None:
    """SMTP 535: P001's touches wait; P005's go; after `accounts connect` P001's resume."""
    respond(world, {"P001": "approve", "P005": "approve"})
    _connect(world, "P001", relay.port, "wrong-password-1")
    _connect(world, "P005", relay.port, PASSWORD)
    start(world)
    run_days(world, 0, 1)  # the first touch
    with tenant_session(world.engine, world.tenant_id) as session:
        p001 = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
        p001_id = p001.id or 0
        held = accounts.held_dispatches(session, partner_id=p001_id, channel="email")
    assert held and {d.state for d in held} == {"failed"}
    p005_first = relay.received.count
    assert p005_first > 0  # the other partner's relay took its messages
    assert {str(m["From"]) for m in relay.received.messages} == {"P005 <p005@relay.example>"}

    result = cli(
        "accounts", "connect", "P001", "email", "--tenant", "northwind",
        "--set", "host=127.0.0.1", "--set", f"port={relay.port}", "--set", "username=relay",
        "--set", f"password={PASSWORD}", "--set", "from_email=p001@relay.example",
        "--set", "from_name=P001", "--set", "timeout_seconds=5",
        "--now", (START + timedelta(days=1, hours=2)).isoformat(),  # before day 2's tick
    )  # fmt: skip
    assert f"{len(held)} dispatch(es) held for this account are due again now" in result.stdout
    assert PASSWORD not in result.stdout
    run_days(world, 2, 46)

    with tenant_session(world.engine, world.tenant_id) as session:
        mine = session.exec(select(Dispatch).where(Dispatch.partner_id == p001_id)).all()
        row = accounts.find_account(session, partner_id=p001_id, channel="email")
    assert row is not None and row.status == accounts.CONNECTED
    assert {d.state for d in mine} == {"done"}, [d.last_error for d in mine]
    from_p001 = [m for m in relay.received.messages if "p001@" in str(m["From"])]
    assert len(from_p001) == sum(d.sent_count for d in mine) > 0
    ids = [str(m["Message-ID"]) for m in from_p001]
    assert len(ids) == len(set(ids))  # nobody got a touch twice
    assert sink.received.count == 0
