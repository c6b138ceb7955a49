"""Email throughput: the engine end to end against the machine's ceiling and a naive loop.

    python bench/email_throughput.py [--contacts 20000] [--partners 10]

Needs postfix's ``smtp-sink`` (Debian: ``apt-get install postfix``; as root it runs with
``-u nobody``): a C sink that is not itself the bottleneck, unlike an aiosmtpd server.
Prints, from the same run:

* engine: messages per second for a whole touch (claim, render once per partner variant,
  per-recipient personalisation, MIME, SMTP, ledger rows) on a fresh SQLite database;
* ceiling: pre-built messages of the same size over one SMTP connection to the same sink;
* naive: a loop that renders Jinja and then MJML for each recipient and builds an
  email.message.EmailMessage for each (no sending);
* the process's peak memory (ru_maxrss).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from jinja2 import Environment
from mjml import mjml2html
from sqlmodel import select

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _free_port() -> int:
    from partnercast.smtp_sink import free_port

    return free_port()


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(sink).exists():
        sys.exit("smtp-sink not found: apt-get install postfix (it ships /usr/sbin/smtp-sink)")
    command = [sink, "-c", "-u", "nobody", f"127.0.0.1:{port}", "256"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=1).quit()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("smtp-sink did not start")


def build_world(folder: Path, partners: int, contacts: int, smtp_port: int):  # type: ignore[no-untyped-def]
    from partnercast.campaigns import approval
    from partnercast.campaigns.cycles import start_cycle
    from partnercast.campaigns.enrollment import enroll_partners
    from partnercast.campaigns.loader import read_campaign
    from partnercast.campaigns.models import Enrollment
    from partnercast.campaigns.store import store_campaign
    from partnercast.core.db import make_engine, upgrade
    from partnercast.core.settings import SmtpSettings, load_settings
    from partnercast.core.tenancy import plain_session, tenant_session
    from partnercast.demo_data import partner_rows, write_csv
    from partnercast.plugins.manager import channel_template_suffixes
    from partnercast.tenants.importing import import_partners
    from partnercast.tenants.models import Contact, Partner, Tenant
    from partnercast.tenants.segments import load_segments_file

    settings = load_settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port),
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with plain_session(engine) as session:
        tenant = Tenant(slug="bench", name="Bench", brand={"legal_name": "Bench Inc."})
        session.add(tenant)
    rng = random.Random(1)
    with tenant_session(engine, tenant.id) as session:
        load_segments_file(session, REPO / "examples" / "tenants" / "segments.yaml")
        import_partners(session, write_csv(folder / "partners.csv", partner_rows(partners, rng)))
    with tenant_session(engine, tenant.id) as session:
        ids = [p.id for p in session.exec(select(Partner)).all()]
        session.add_all(
            Contact(
                partner_id=ids[n % len(ids)],
                external_id=f"C{n}",
                email=f"c{n}@bench.example",
                first_name=f"First{n}",
                company="Acme",
                locale="en",
                consent=True,
            )
            for n in range(contacts)
        )
    loaded = read_campaign(
        REPO / "examples" / "campaigns" / "cloud-security", channel_template_suffixes()
    )
    with tenant_session(engine, tenant.id) as session:
        campaign = store_campaign(session, loaded).campaign
        enroll_partners(session, campaign)
        for enrollment in session.exec(select(Enrollment)).all():
            approval.transition(session, enrollment, "submit", actor="bench")
            approval.transition(session, enrollment, "approve", actor="bench")
        start_cycle(session, campaign, START)
    return engine, settings


def engine_rate(engine, settings) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    from partnercast.campaigns.ticking import tick

    started = time.perf_counter()
    sent = tick(engine, settings, START + timedelta(hours=1)).sent
    return sent, time.perf_counter() - started


def ceiling_rate(port: int, size: int, count: int) -> float:
    body = b"x" * 76 + b"\r\n"
    payload = b"From: a@bench.example\r\nTo: b@bench.example\r\nSubject: ceiling\r\n\r\n"
    payload += body * max(1, size // len(body))
    smtp = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for _ in range(count):
        smtp.sendmail("a@bench.example", ["b@bench.example"], payload)
    elapsed = time.perf_counter() - started
    smtp.quit()
    return count / elapsed


def naive_rate(count: int) -> float:
    template = REPO / "examples" / "campaigns" / "cloud-security" / "templates" / "email"
    source = (template / "intro.en.mjml").read_text(encoding="utf-8")
    for partial in template.glob("_*.mjml"):
        source = source.replace(f'{{% include "email/{partial.name}" %}}', partial.read_text())
    environment = Environment(autoescape=True)
    compiled = environment.from_string(source)
    context = {
        "brand": {
            "name": "P",
            "legal_name": "P GmbH",
            "postal_address": "Street 1",
            "primary_color": "#123456",
            "logo_url": "",
        },
        "partner": {"name": "P"},
        "campaign": {"key": "k", "name": "n"},
        "vars": {
            "product": "Shield",
            "vendor": "V",
            "demo_minutes": 30,
            "discount": "10%",
            "landing_url": "https://x",
            "checklist_url": "https://x",
        },
        "fields": {
            "headline": "Hi",
            "intro": "Intro",
            "call_to_action": "Book a demo",
            "show_event": False,
            "event_date": None,
            "signature_line": "Sig",
        },
        "locked": {"legal": "Legal", "offer_terms": "Terms"},
        "links": {"unsubscribe": "https://x/u"},
        "touch": {"key": "intro", "day": 1},
        "locale": "en",
    }
    started = time.perf_counter()
    for number in range(count):
        html = mjml2html(compiled.render(contact={"first_name": f"F{number}"}, **context))
        message = EmailMessage(policy=SMTP)
        message["Subject"], message["To"] = "Hi", f"c{number}@x"
        message.set_content("text")
        message.add_alternative(html, subtype="html")
        message.as_bytes()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--partners", type=int, default=10)
    args = parser.parse_args()
    port = _free_port()
    sink = start_sink(port)
    folder = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    try:
        engine, settings = build_world(folder, args.partners, args.contacts, port)
        sent, seconds = engine_rate(engine, settings)
        ceiling = ceiling_rate(port, 28_000, 3_000)
        naive = naive_rate(300)
    finally:
        sink.kill()
        shutil.rmtree(folder, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine_mps = sent / seconds
    print(f"engine  : {sent:,} messages in {seconds:.1f} s = {engine_mps:,.0f} msg/s (1 worker)")
    print(f"ceiling : {ceiling:,.0f} msg/s (pre-built 28 KB messages, 1 connection)")
    print(f"naive   : {naive:,.0f} msg/s (Jinja + MJML + EmailMessage per recipient, no send)")
    print(
        f"ratios  : engine/ceiling {engine_mps / ceiling:.0%}, "
        f"engine/naive {engine_mps / naive:.1f}x"
    )
    print(f"peak RSS: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
