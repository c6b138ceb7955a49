"""Secure by default: no command signs or decrypts on a published key or on none; `init`
(or `db upgrade` on a new set-up) makes the keys, owner-only and never shown; keys rotate
without breaking the links already sent."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from partnercast.core import signing
from partnercast.core.errors import UserError
from partnercast.core.keys import KEY_FILE_NAME, generate_keys, read_key_file, write_key_file
from partnercast.core.secrets import SecretBox
from partnercast.core.settings import load_settings

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
NO_KEYS = "run `partnercast init` to generate the keys"


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    """No key anywhere: not in the environment, no key file (the cwd is the test's own)."""
    for name in ("PARTNERCAST_SECRET_KEY", "PARTNERCAST_ENCRYPTION_KEYS", "PARTNERCAST_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PARTNERCAST_CONFIG", raising=False)
    assert not Path(KEY_FILE_NAME).exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["tick", "--now", "2031-03-04T05:00"], id="tick"),
        pytest.param(["worker", "--once"], id="worker"),
        pytest.param(["serve", "--port", "0"], id="serve"),
        pytest.param(["accounts", "rotate-keys"], id="accounts-rotate"),
        pytest.param(["accounts", "list", "--tenant", "vendor-a"], id="accounts-list"),
        pytest.param(["crm", "secret", "--tenant", "vendor-a"], id="crm-secret"),
        pytest.param(["partners", "link", "P1", "--tenant", "vendor-a"], id="partner-link"),
    ],
)
def test_commands_that_sign_or_decrypt_refuse_to_start_without_keys(
    no_keys: None, cli, args: list[str]
) -> None:
    result = cli(*args, expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "no secret key configured" in lines[0] and NO_KEYS in lines[0]


def test_serve_without_keys_is_one_line_and_listens_on_nothing(no_keys: None) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "partnercast", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and NO_KEYS in done.stderr
    assert "serving on" not in done.stdout


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param(
            "PARTNERCAST_SECRET_KEY",
            "development-only-secret-key-change-me",
            "the development key published",
            id="published-key",
        ),
        pytest.param("PARTNERCAST_SECRET_KEY", "short-key", "shorter than 32", id="short-key"),
        pytest.param(
            "PARTNERCAST_ENCRYPTION_KEYS", '["not-a-fernet-key"]', "not a Fernet key", id="fernet"
        ),
        pytest.param(  # a bare key where a JSON list belongs: pydantic-settings' own error
            "PARTNERCAST_ENCRYPTION_KEYS",
            "ZmVybmV0LWtleS1ub3QtaW4tYS1saXN0LWF0LWFsbC0=",
            "PARTNERCAST_ENCRYPTION_KEYS must be a JSON list",
            id="not-a-list",
        ),
        pytest.param(
            "PARTNERCAST_RATE_LIMITS",
            "{google_ads",
            "PARTNERCAST_RATE_LIMITS must be a JSON",
            id="json",
        ),
    ],
)
def test_a_key_that_is_not_a_real_one_is_one_line_that_does_not_show_it(
    cli, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli("tick", "--now", "2031-03-04T05:00", expect=1)
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert value not in result.stderr + result.stdout


def test_init_writes_owner_only_keys_it_never_shows_and_keeps(no_keys: None, cli) -> None:
    first = cli("init")
    path = Path(KEY_FILE_NAME)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = read_key_file(path)
    secret, (fernet,) = keys["secret_key"], keys["encryption_keys"]
    assert len(secret) >= 32 and Fernet(fernet.encode())
    assert secret not in first.stdout + first.stderr and fernet not in first.stdout
    assert "keys generated in" in first.stdout and "database at revision" in first.stdout
    again = cli("init")  # safe to run again: the keys stay
    assert "keys generated" not in again.stdout
    assert read_key_file(path) == keys
    settings = load_settings()  # found where the settings look
    assert settings.signing_secret() == secret
    assert settings.keys_from == str(path)
    cli("tenants", "create", "vendor-a", "--name", "A")  # and every command runs


def test_db_upgrade_on_a_new_set_up_makes_the_keys_too(no_keys: None, cli) -> None:
    result = cli("db", "upgrade")
    assert "keys generated in" in result.stdout
    assert stat.S_IMODE(Path(KEY_FILE_NAME).stat().st_mode) == 0o600
    cli("tick", "--now", "2031-03-04T05:00")


def test_keys_from_the_environment_are_used_and_no_file_is_written(cli) -> None:
    cli("init")
    assert not Path(KEY_FILE_NAME).exists()


def test_a_key_file_others_can_read_is_refused(no_keys: None, cli) -> None:
    cli("init")
    Path(KEY_FILE_NAME).chmod(0o644)
    result = cli("tick", "--now", "2031-03-04T05:00", expect=1)
    assert "can be read by others" in result.stderr and "chmod 600" in result.stderr


def test_a_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    write_key_file(path, generate_keys())
    before = path.read_text()
    with pytest.raises(UserError, match="never overwritten"):
        write_key_file(path, generate_keys())
    assert path.read_text() == before
    assert "secret_key=****" in repr(generate_keys())


def test_rotation_keeps_links_already_sent_and_secrets_already_sealed(
    no_keys: None, cli, engine
) -> None:
    from partnercast.core.accounts import ChannelAccount
    from partnercast.core.secrets import secret_box
    from partnercast.core.tenancy import system_session, tenant_session
    from partnercast.core.webhook_models import WebhookEndpoint
    from partnercast.core.webhook_outbox import create_endpoint
    from partnercast.funnel.crm_secret import new_secret, verify_secret

    cli("init")
    before = load_settings()
    old_link = signing.sign(before, "unsubscribe", [1, 2, 3], now=NOW)
    old_recipient = signing.recipient_token(
        before, tenant_id=1, dispatch_id=2, contact_id=3, now=NOW
    )
    tenant = _tenant(engine)
    with tenant_session(engine, tenant) as session:
        sealed = secret_box(before).seal({"password": "relay-pass"})
        session.add(
            ChannelAccount(
                partner_id=_partner(engine, tenant),
                channel="email",
                secrets=sealed,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        crm = new_secret(session, before, now=NOW)
        endpoint, signing_secret = create_endpoint(
            session, before, url="https://hooks.example/in", event_types=["*"], now=NOW
        )

    result = cli("init", "--rotate")
    assert "keys rotated" in result.stdout
    after = load_settings()
    assert after.signing_secret() != before.signing_secret()
    assert [k.get_secret_value() for k in after.previous_secret_keys] == [before.signing_secret()]
    later = NOW + timedelta(days=1)
    assert signing.unsign(after, "unsubscribe", old_link, max_age_seconds=DAY7, now=later) == [
        1,
        2,
        3,
    ]
    read = signing.read_recipient_token(after, old_recipient, max_age_seconds=DAY7, now=later)
    assert (read.tenant_id, read.dispatch_id, read.contact_id) == (1, 2, 3)
    new_link = signing.sign(after, "unsubscribe", [4], now=NOW)
    with pytest.raises(signing.InvalidToken):  # new links are signed with the new key only
        signing.unsign(before, "unsubscribe", new_link, max_age_seconds=DAY7, now=later)

    # Re-encrypts channel accounts, CRM secrets and outgoing webhook signing secrets.
    rotated = cli("accounts", "rotate-keys")
    assert "1 outgoing webhook endpoints" in rotated.stdout
    newest = SecretBox([after.encryption_keys[0].get_secret_value()])
    with system_session(engine, reason="test reads every account") as session:
        (row,) = session.exec(select(ChannelAccount)).all()
        assert newest.open(row.secrets) == {"password": "relay-pass"}
        resealed = session.get(WebhookEndpoint, endpoint.id)
        assert resealed is not None
        assert newest.open(resealed.sealed_secret) == {"secret": signing_secret}
    only_new = after.model_copy(update={"encryption_keys": after.encryption_keys[:1]})
    with tenant_session(engine, tenant) as session:
        assert verify_secret(session, only_new) == crm


def test_rotate_keys_with_a_wrong_key_is_one_line(
    no_keys: None, cli, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from partnercast.core.accounts import ChannelAccount
    from partnercast.core.secrets import secret_box
    from partnercast.core.tenancy import tenant_session

    cli("init")
    tenant = _tenant(engine)
    with tenant_session(engine, tenant) as session:
        session.add(
            ChannelAccount(
                partner_id=_partner(engine, tenant),
                channel="email",
                secrets=secret_box(load_settings()).seal({"p": "x"}),
                created_at=NOW,
                updated_at=NOW,
            )
        )
    wrong = Fernet.generate_key().decode()
    monkeypatch.setenv("PARTNERCAST_ENCRYPTION_KEYS", f'["{wrong}"]')
    result = cli("accounts", "rotate-keys", expect=1)
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "cannot be decrypted with the configured encryption keys" in result.stderr
    assert wrong not in result.stderr


DAY7 = 7 * 86400


def _tenant(engine) -> int:
    from conftest import make_tenant

    return make_tenant(engine, "vendor-a")


def _partner(engine, tenant: int) -> int:
    from partnercast.core.tenancy import tenant_session
    from partnercast.tenants.models import Partner

    with tenant_session(engine, tenant) as session:
        partner = Partner(external_id="P1", name="P One", created_at=NOW, updated_at=NOW)
        session.add(partner)
        session.flush()
        assert partner.id is not None
        return partner.id


def test_settings_loaded_without_requiring_keys_still_refuse_to_sign(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "none.toml", require_keys=False, secret_key=None)
    with pytest.raises(UserError, match=NO_KEYS):
        signing.sign(settings, "unsubscribe", [1], now=NOW)
    with pytest.raises(UserError, match=NO_KEYS):
        signing.recipient_token(settings, tenant_id=1, dispatch_id=1, contact_id=1, now=NOW)


def test_init_on_an_upgraded_set_up_keeps_the_derived_key_until_rotate_keys(
    no_keys: None, cli, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment of before the key file set only PARTNERCAST_SECRET_KEY: its stored
    secrets were sealed with the Fernet key derived from it. `init` keeps that key after a
    new one, so they still open; after `accounts rotate-keys` the old key can go."""
    from partnercast.core.accounts import ChannelAccount
    from partnercast.core.keys import KeyMaterial, legacy_encryption_key
    from partnercast.core.secrets import secret_box
    from partnercast.core.tenancy import system_session, tenant_session
    from partnercast.funnel.crm_secret import new_secret, verify_secret

    secret = generate_keys().secret_key
    monkeypatch.setenv("PARTNERCAST_SECRET_KEY", secret)
    derived = legacy_encryption_key(secret)
    # The derivation earlier versions used (core/secrets.py before dfc3899), held here.
    assert (
        derived
        == base64.urlsafe_b64encode(
            hashlib.sha256(b"partnercast-secrets:" + secret.encode()).digest()
        ).decode()
    )
    old = load_settings(require_keys=False, encryption_keys=[derived])  # sealed the old way
    tenant = _tenant(engine)
    with tenant_session(engine, tenant) as session:
        session.add(
            ChannelAccount(
                partner_id=_partner(engine, tenant),
                channel="email",
                secrets=secret_box(old).seal({"password": "relay-pass"}),
                created_at=NOW,
                updated_at=NOW,
            )
        )
        crm = new_secret(session, old, now=NOW)

    result = cli("init")
    assert "accounts rotate-keys" in result.stdout and "may be removed" in result.stdout
    path = Path(KEY_FILE_NAME)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = read_key_file(path)
    assert "secret_key" not in keys  # the signing key stays in the environment
    new_key, old_key = keys["encryption_keys"]
    assert old_key == derived and new_key != derived
    for shown in (secret, new_key, old_key):
        assert shown not in result.stdout + result.stderr
    upgraded = load_settings()
    assert upgraded.signing_secret() == secret
    with system_session(engine, reason="test reads every account") as session:
        (row,) = session.exec(select(ChannelAccount)).all()
        assert secret_box(upgraded).open(row.secrets) == {"password": "relay-pass"}
    with tenant_session(engine, tenant) as session:
        assert verify_secret(session, upgraded) == crm

    cli("accounts", "rotate-keys")
    write_key_file(path, KeyMaterial("", [new_key]), replace=True)  # the old key removed
    only_new = load_settings()
    assert [k.get_secret_value() for k in only_new.encryption_keys] == [new_key]
    with system_session(engine, reason="test reads every account") as session:
        (row,) = session.exec(select(ChannelAccount)).all()
        assert secret_box(only_new).open(row.secrets) == {"password": "relay-pass"}
    with tenant_session(engine, tenant) as session:
        assert verify_secret(session, only_new) == crm
    cli("accounts", "rotate-keys")  # and every command runs on the new key alone


def test_init_refuses_to_derive_from_the_published_key(
    no_keys: None, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNERCAST_SECRET_KEY", "development-only-secret-key-change-me")
    result = cli("init", expect=1)
    assert "the development key published" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not Path(KEY_FILE_NAME).exists()
