"""Languages of the shell and the engine's public pages: every text of the catalogues
translated to German and French, the unsubscribe page naming the sender in the contact's
language, the landing pages' built-in words in German and French."""

from __future__ import annotations

import html
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine
from support.browser import LiveServer
from support.signin_world import add_partner

from partnercast.channels.microsite.texts import SOURCE, texts
from partnercast.core.signing import recipient_token
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Contact
from partnercast.web.i18n import gettext_for, template_globals

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)


def test_every_text_of_the_shell_and_the_pages_is_translated() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "catalogues.py"), "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_locale_reads_its_language_and_falls_back_to_english() -> None:
    assert gettext_for("de_CH")("Sign in") == "Anmelden"
    assert gettext_for("fr-CA")("Sign in") == "Se connecter"
    assert gettext_for("pt_BR")("Sign in") == "Sign in"
    assert gettext_for("de", "portal")("Sign out") == "Abmelden"  # a domain falls back to shell
    assert template_globals("it")["lang"] == "en"  # English shown: said to be English
    assert template_globals("de_AT")["lang"] == "de"


@pytest.mark.parametrize(
    ("locale", "button", "words"),
    [
        ("de", "Abmelden", "Keine E-Mails mehr von Alpha Sender und den anderen Partnern von"),
        ("fr_FR", "Se désabonner", "Ne plus recevoir d'e-mails de Alpha Sender ni des autres"),
        ("en", "Unsubscribe", "Stop all emails from Alpha Sender and the other partners of"),
    ],
)
def test_the_unsubscribe_page_names_the_sender_in_the_contacts_language(
    live_server: LiveServer, engine: Engine, tenant_a: int, locale: str, button: str, words: str
) -> None:
    partner = add_partner(engine, tenant_a, "Alpha", NOW, sender_name="Alpha Sender")
    with tenant_session(engine, tenant_a) as session:
        contact = Contact(
            partner_id=partner,
            external_id="c1",
            email="carla@customer.example",
            locale=locale,
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(contact)
        session.flush()
        contact_id = contact.id or 0
    token = recipient_token(
        live_server.settings, tenant_id=tenant_a, dispatch_id=1, contact_id=contact_id, now=NOW
    )
    page = requests.get(live_server.path(f"/u/{token}"), timeout=60)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert words in text and f"<button type=submit>{button}</button>" in text
    assert f'lang="{locale[:2]}"' in text
    if locale != "en":
        assert ">Unsubscribe<" not in text and "this sender" not in text


def test_a_forged_unsubscribe_link_speaks_the_browsers_language(live_server: LiveServer) -> None:
    answer = requests.post(
        live_server.path("/u/forged.token"),
        data=b"List-Unsubscribe=One-Click",
        headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"},
        timeout=60,
    )
    assert answer.status_code == 400 and "Ce lien n'est pas valide." in html.unescape(answer.text)


def test_the_landing_pages_words_exist_in_german_and_french() -> None:
    for locale, send, required in (
        ("de_AT", "Senden", "Bitte füllen Sie dieses Feld aus."),
        ("fr", "Envoyer", "Veuillez remplir ce champ."),
        ("fr-BE", "Envoyer", "Veuillez remplir ce champ."),
    ):
        words = texts(locale)
        assert (words["submit"], words["required"]) == (send, required)
        assert [key for key in SOURCE if words[key] == SOURCE[key]] == []  # no English left
        assert words["consent"].format(partner="P").count("P") >= 1
    assert texts("pt")["submit"] == "Send"


@pytest.mark.parametrize(
    ("choice", "german"),
    [("Book a demo", "Demo vereinbaren"), ("Get the checklist", "Checkliste anfordern")],
)
def test_the_german_landing_page_shows_the_call_to_action_in_german(
    choice: str, german: str
) -> None:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    folder = REPO / "examples" / "campaigns" / "cloud-security-digital" / "templates"
    source = (folder / "microsite" / "landing.de.html").read_text(encoding="utf-8")
    page = (
        SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
        .from_string(source)
        .render(
            brand={"logo_url": "", "name": "P", "legal_name": "P", "postal_address": "A"},
            vars={"vendor": "V", "product": "S", "demo_minutes": 20, "discount": "10%"},
            fields={
                "page_headline": "H",
                "page_intro": "I",
                "call_to_action": choice,
                "signature_line": "",
            },
            locked={"offer_terms": "T", "legal": "L"},
        )
    )
    assert f'href="#contact">{german}</a>' in page and choice not in page


def test_not_found_speaks_the_browsers_language(live_server: LiveServer) -> None:
    for language, words in (("de-DE,de;q=0.9", "Nicht gefunden"), ("fr", "Introuvable")):
        answer = requests.get(
            live_server.path("/portal/no-such-vendor/x"),
            headers={"Accept-Language": language},
            timeout=60,
        )
        assert answer.status_code == 404 and f"<h1>{words}</h1>" in answer.text
    assert "<h1>Not found</h1>" in requests.get(live_server.path("/nothing"), timeout=60).text
