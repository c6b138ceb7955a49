"""Settings: defaults < config file < environment < explicit overrides; unsafe ones refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from partnercast.core.errors import UserError
from partnercast.core.settings import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "PARTNERCAST_DATABASE_URL",
        "PARTNERCAST_CONFIG",
        "PARTNERCAST_SMTP_PORT",
        "PARTNERCAST_ENVIRONMENT",
        "PARTNERCAST_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_use_embedded_sqlite() -> None:
    assert load_settings().database_url.startswith("sqlite:///")


def test_config_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "partnercast.toml").write_text(
        '[partnercast]\ndatabase_url = "sqlite:///from-file.db"\n[partnercast.smtp]\nport = 2525\n'
        'host = "mail.example"\n',
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.database_url == "sqlite:///from-file.db"
    assert (settings.smtp.host, settings.smtp.port) == ("mail.example", 2525)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", "postgresql+psycopg://db/x")
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", "587")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://db/x"
    assert (settings.smtp.host, settings.smtp.port) == ("mail.example", 587)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("database_url = ", "invalid TOML", id="broken-toml"),
        pytest.param("[smtp]\nport = 'many'\n", "smtp.port", id="bad-smtp-port"),
        pytest.param("databse_url = 'x'\n", "databse_url", id="unknown-setting"),
    ],
)
def test_bad_config_file_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "partnercast.toml").write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message) as caught:
        load_settings()
    assert "partnercast.toml" in str(caught.value)


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERCAST_ENVIRONMENT", "production")
    with pytest.raises(UserError, match="PARTNERCAST_SECRET_KEY"):
        load_settings()
    monkeypatch.setenv("PARTNERCAST_SECRET_KEY", "a-real-secret-from-the-vault")
    with pytest.raises(UserError, match="PARTNERCAST_ENCRYPTION_KEYS"):
        load_settings()
    monkeypatch.setenv("PARTNERCAST_ENCRYPTION_KEYS", '["' + "k" * 43 + '="]')
    settings = load_settings()
    assert settings.environment == "production"
    assert "k" * 43 not in repr(settings)


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERCAST_SECRET_KEY", "s3cr3t-value")
    monkeypatch.setenv("PARTNERCAST_SMTP_PASSWORD", "smtp-pa55")
    settings = load_settings()
    assert "s3cr3t-value" not in repr(settings)
    assert "smtp-pa55" not in repr(settings)
