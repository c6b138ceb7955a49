"""Namespaced plugin settings: ``[<namespace>]`` in partnercast.toml, then
``PARTNERCAST_<NAMESPACE>_<FIELD>``, validated by the plugin's own model; the email channel's
SMTP settings read this way exactly as the README documents them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from partnercast.channels.email import SmtpSettings
from partnercast.channels.email.channel import EmailAccount
from partnercast.core.errors import PartnercastError, UserError
from partnercast.core.settings import load_settings
from partnercast.plugins import PluginConfig, RegisterSettings, hookimpl
from partnercast.plugins.manager import load_plugins


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "PARTNERCAST_CONFIG",
        "PARTNERCAST_SMTP_HOST",
        "PARTNERCAST_SMTP_PORT",
        "PARTNERCAST_SMTP_PASSWORD",
        "PARTNERCAST_ENVIRONMENT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _smtp(**overrides: object) -> SmtpSettings:
    return load_plugins().config(load_settings(**overrides)).section("smtp", SmtpSettings)


@pytest.mark.parametrize("table", ["[smtp]", "[partnercast.smtp]"])
def test_the_readme_smtp_table_then_its_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str
) -> None:
    (tmp_path / "partnercast.toml").write_text(
        f'{table}\nhost = "mail.example"\nport = 2525\nsecurity = "starttls"\n'
        'username = "relay"\npassword = "file-pa55"\n',
        encoding="utf-8",
    )
    smtp = _smtp()
    assert (smtp.host, smtp.port, smtp.security, smtp.username) == (
        "mail.example",
        2525,
        "starttls",
        "relay",
    )
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", "587")
    monkeypatch.setenv("PARTNERCAST_SMTP_PASSWORD", "env-pa55")
    smtp = _smtp()
    assert (smtp.host, smtp.port) == ("mail.example", 587)
    assert smtp.password is not None and smtp.password.get_secret_value() == "env-pa55"


def test_an_explicit_section_replaces_file_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARTNERCAST_SMTP_HOST", "from-env.example")
    assert _smtp(smtp=SmtpSettings(port=1025)).host == "127.0.0.1"
    assert _smtp(smtp={"port": 1026}).port == 1026


def test_the_email_channel_sends_through_its_own_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", "2525")
    channel = load_plugins().channel("email", load_settings())
    account = channel.account_for({"sender_email": "news@partner.example", "sender_name": "P"})
    assert isinstance(account, EmailAccount) and account.port == 2525


@pytest.mark.parametrize(
    ("file", "env", "message", "where"),
    [
        pytest.param("[smtp]\nport = 'many'\n", {}, "smtp.port", "partnercast.toml", id="file"),
        pytest.param("", {"PARTNERCAST_SMTP_PORT": "many"}, "smtp.port", "environment", id="env"),
        pytest.param("[smtp]\nhots = 'x'\n", {}, "smtp.hots", "partnercast.toml", id="typo"),
    ],
)
def test_a_bad_value_is_one_clear_error_naming_the_section(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file: str,
    env: dict[str, str],
    message: str,
    where: str,
) -> None:
    (tmp_path / "partnercast.toml").write_text(file, encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=message) as caught:
        _smtp()
    assert str(caught.value).startswith(where)


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERCAST_SMTP_PASSWORD", "smtp-pa55")
    settings = load_settings()
    config = load_plugins().config(settings)
    for text in (repr(settings), repr(config), repr(config.section("smtp", SmtpSettings))):
        assert "smtp-pa55" not in text


class Webhook(BaseModel):
    url: str = "https://hooks.example/in"
    token: SecretStr | None = None
    retries: list[int] = [1, 5]


class WebhookPlugin:
    @hookimpl
    def register_settings(self, register: RegisterSettings) -> None:
        register("webhook", Webhook)


def test_a_third_party_plugin_gets_its_own_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "partnercast.toml").write_text('[webhook]\ntoken = "t0ken-1234"\n')
    monkeypatch.setenv("PARTNERCAST_WEBHOOK_RETRIES", "[2, 4, 8]")
    plugins = load_plugins([WebhookPlugin()])
    assert set(plugins.settings_models()) == {"smtp", "microsite", "webhook"}
    webhook = plugins.config(load_settings()).section("webhook", Webhook)
    assert webhook.retries == [2, 4, 8] and webhook.url == "https://hooks.example/in"
    assert webhook.token is not None and webhook.token.get_secret_value() == "t0ken-1234"


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        pytest.param("smtp", "two plugins register the settings 'smtp'", id="duplicate"),
        pytest.param("rate_limits", "shadow the core setting 'rate_limits'", id="core-table"),
        pytest.param("secret", "shadow the core setting 'secret_key'", id="core-env"),
        pytest.param("Web-Hook", "lower-case", id="malformed"),
    ],
)
def test_a_namespace_that_clashes_is_refused(namespace: str, message: str) -> None:
    class Clashing:
        @hookimpl
        def register_settings(self, register: RegisterSettings) -> None:
            register(namespace, Webhook)

    with pytest.raises(PartnercastError, match=message):
        load_plugins([Clashing()]).settings_models()


def test_a_bare_channel_gets_the_defaults() -> None:
    assert PluginConfig().section("smtp", SmtpSettings) == SmtpSettings()
