"""Settings: defaults < key file < config file < environment < explicit overrides (the keys
themselves: tests/core/test_keys.py)."""

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
        "PARTNERCAST_KEY_FILE",
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
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", "postgresql+psycopg://db/x")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://db/x"


def test_tables_that_are_not_core_settings_are_plugin_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core keeps them raw: each plugin validates its own (tests/plugins/test_settings.py)."""
    (tmp_path / "partnercast.toml").write_text(
        "[smtp]\nport = 2525\n[rate_limits.x]\nper_day = 10\n", encoding="utf-8"
    )
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", "587")
    settings = load_settings(webhook={"url": "https://hooks.example"})
    assert settings.rate_limits == {"x": {"per_day": 10}}
    sources = settings.plugin_sources
    assert sources.file == {"smtp": {"port": 2525}}
    assert sources.environ["PARTNERCAST_SMTP_PORT"] == "587"
    assert "PARTNERCAST_DATABASE_URL" not in sources.environ
    assert sources.overrides == {"webhook": {"url": "https://hooks.example"}}
    assert sources.where.endswith("partnercast.toml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("database_url = ", "invalid TOML", id="broken-toml"),
        pytest.param("databse_url = 'x'\n", "databse_url", id="unknown-setting"),
    ],
)
def test_bad_config_file_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "partnercast.toml").write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message) as caught:
        load_settings()
    assert "partnercast.toml" in str(caught.value)


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERCAST_SECRET_KEY", "s3cr3t-value" * 4)
    monkeypatch.setenv("PARTNERCAST_SMTP_PASSWORD", "smtp-pa55")
    settings = load_settings()
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in settings.model_dump_json()
    assert "smtp-pa55" not in repr(settings)
    assert "smtp-pa55" not in settings.model_dump_json()
