"""`partnercast demo`: the whole story on a fresh SQLite database, in seconds.

A vendor with ~40 partners in three segments and ~2,400 contacts; the sample campaign from
examples/; partners customise and approve it (some decline, one asks for changes, one
never answers); a 45-day cycle on a simulated clock, every email delivered to an SMTP
server the demo starts on localhost; a few recipients click the one-click unsubscribe link
in the mail they got, over real HTTP, and get nothing after that. Readers open and click
the first email through the engine's tracker (demo_engagement), the networks' stand-ins
report numbers that the engine fetches, three concierges hold the partners and keep a
weekly review (demo_concierge), and a second cycle sends its first email so that the
reports compare cycles (demo_funnel dates the CRM's leads in both).
"""

from __future__ import annotations

import random
import re
import shutil
import threading
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from importlib import resources
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from partnercast.campaigns import approval, decisions
from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.enrollment import (
    customise,
    enroll_partners,
    set_auto_approve,
)
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.models import Enrollment
from partnercast.campaigns.preview import render_preview
from partnercast.campaigns.reporting import partner_rows, partner_table
from partnercast.campaigns.store import get_campaign, store_campaign
from partnercast.campaigns.ticking import tick
from partnercast.channels.email import SmtpSettings
from partnercast.concierge.readiness import missing_by_partner
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.cli import CliConsole
from partnercast.core.db import make_engine, upgrade
from partnercast.core.errors import Problems, UserError
from partnercast.core.keys import KEY_FILE_NAME, KeyMaterial, generate_keys, write_key_file
from partnercast.core.settings import Settings, load_settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.demo import concierge as demo_concierge
from partnercast.demo import digital as demo_digital
from partnercast.demo import engagement as demo_engagement
from partnercast.demo import feedback as demo_feedback
from partnercast.demo import funnel as demo_funnel
from partnercast.demo import people as demo_people
from partnercast.demo.data import TENANT_BRAND, TENANT_NAME, TENANT_SLUG, contact_rows, write_csv
from partnercast.demo.data import partner_rows as make_partner_rows
from partnercast.demo.search_standin import GoogleAdsStandIn
from partnercast.demo.smtp_sink import SmtpSinkProcess, free_port
from partnercast.demo.social_standin import SocialStandIn
from partnercast.funnel.rollups import install as keep_rollups
from partnercast.plugins.manager import channel_template_suffixes
from partnercast.tenants.importing import import_contacts, import_partners
from partnercast.tenants.models import Contact, Partner, Tenant
from partnercast.tenants.segments import load_segments_file
from partnercast.web.app import make_http_server
from partnercast.web.outgoing_events import install as report_to_webhooks

console = CliConsole(markup=True)
"""The demo's console: it tells its own made-up story, styled with Rich markup."""

DECLINE_NOTES = (
    "Not our focus this quarter",
    "We run our own security campaign",
    "No budget until Q2",
)
TRIES_BAD_TEXT = 4  # the fifth partner tries to save template code and a locked zone
UNSUBSCRIBERS = 12
SAMPLE = UNSUBSCRIBERS * 4  # .eml files left in outbox/ as samples
SECOND_CYCLE_DAYS = 4  # cycle 2 runs this many days by the demo's end: its first email
READERS_DAY = 6  # the day readers open and click the first email (all of it sent by then)
REVIEW_DAY = 7  # the day the weekly review is held with one partner


@dataclass(frozen=True)
class Timeline:
    """The demo's simulated clock: every instant it acts at (or a day of a cycle), all
    from the one instant its entry is given. The engine's HTTP endpoints that recipients,
    readers and the one visitor reach are edges of their own: they read the real clock,
    and check the signed links the demo mailed against it. So the story is placed around
    the day the demo runs (a fixed date would make those links too old one day)."""

    cycle_start: datetime

    @classmethod
    def around(cls, now: datetime) -> Timeline:
        """The first cycle started at 09:00 UTC, READERS_DAY days before ``now``'s date:
        the readers open the first email about when the tracker sees them do it."""
        day = as_utc(now).replace(hour=9, minute=0, second=0, microsecond=0)
        return cls(day - timedelta(days=READERS_DAY))

    @property
    def set_up(self) -> datetime:
        """The tenant, its segments, partners and contacts."""
        return self.cycle_start - timedelta(days=14)

    @property
    def staffed(self) -> datetime:
        """Concierges, capacity, readiness."""
        return self.cycle_start - timedelta(days=7)

    @property
    def campaign(self) -> datetime:
        """The campaign stored, partners invited."""
        return self.cycle_start - timedelta(days=6)

    @property
    def responses(self) -> datetime:
        """Partners customise, approve or decline, one an hour from here."""
        return self.cycle_start - timedelta(days=3)

    @property
    def end(self) -> datetime:
        """Metrics fetched, mail feedback, CRM results and reports."""
        return self.cycle_start + timedelta(days=50)


def assign_roles(count: int) -> dict[int, str]:
    """Who does what, by position among ``count`` partners (the rest approve).

    Three decline, one asks for changes, one never answers, two choose auto-approval;
    spread over the list (so over the segments) and the same for any size.
    """
    wanted = [
        ("decline:0", 0.06),
        ("changes", 0.22),
        ("decline:1", 0.42),
        ("auto", 0.30),
        ("silent", 0.60),
        ("auto", 0.67),
        ("decline:2", 0.77),
    ]
    roles: dict[int, str] = {}
    for role, share in wanted:
        position = min(count - 1, max(1, round(share * count)))
        while position in roles and position < count - 1:
            position += 1
        if position not in roles:
            roles[position] = role
    return roles


def _example(*parts: str) -> Path:
    return Path(str(resources.files("partnercast.examples").joinpath(*parts)))


def _step(text: str) -> None:
    console.print(f"[bold cyan]•[/] {text}")


def run_demo(folder: Path, *, now: datetime, partners: int = 40, contacts: int = 2400) -> None:
    """Run the demo in ``folder`` (its database is recreated each run); its story is
    placed around ``now`` (:meth:`Timeline.around`)."""
    timeline = Timeline.around(now)
    keep_rollups()  # the demo composes its engine: the funnel's rollups follow its events
    report_to_webhooks()  # and what happens is written for the tenants' webhooks
    folder = folder.resolve()
    _fresh_folder(folder)
    console.rule("[bold]partnercast demo")
    # Every message of the first email is saved, for the readers' opens and clicks; the
    # outbox is cut back to a sample afterwards.
    with SmtpSinkProcess(save_to=folder / "outbox", save_first=max(SAMPLE, contacts)) as sink:
        web_port = free_port()
        keys = _demo_keys(folder)
        settings = load_settings(
            secret_key=keys.secret_key,
            encryption_keys=keys.encryption_keys,
            database_url=f"sqlite:///{folder / 'partnercast.db'}",
            public_base_url=f"http://127.0.0.1:{web_port}",
            smtp=SmtpSettings(host="127.0.0.1", port=sink.port),
        )
        engine = make_engine(settings.database_url)
        upgrade(engine)
        _step(f"database: {folder / 'partnercast.db'} (migrated)")
        _step(
            f"SMTP server for the demo: 127.0.0.1:{sink.port}; "
            f"unsubscribe endpoint: {settings.public_base_url}"
        )
        server = make_http_server(engine, settings, "127.0.0.1", web_port)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with SocialStandIn() as social, GoogleAdsStandIn() as ads:
            _step(
                f"stand-ins of the X and LinkedIn APIs at {social.url} and of the Google Ads API "
                f"at {ads.url}: local fakes shaped like the real APIs, nothing leaves this machine"
            )
            try:
                tenant_id = _set_up_tenant(engine, folder, partners, contacts, timeline.set_up)
                _staff(engine, tenant_id, timeline.staffed)
                _people(engine, tenant_id, timeline.staffed)
                _load_campaign(engine, tenant_id, timeline.campaign)
                _partners_respond(engine, settings, tenant_id, folder, timeline.responses)
                approved = demo_digital.set_up(
                    engine,
                    settings,
                    tenant_id,
                    social,
                    ads,
                    assign_roles(partners),
                    timeline.cycle_start,
                )
                _step(
                    f"campaign [bold]{demo_digital.CAMPAIGN}[/] (landing page, X, LinkedIn, search "
                    f"ad): {approved} partners approved and connected their accounts"
                )
                review = _run_cycle(engine, settings, tenant_id, sink, timeline.cycle_start)
                fetched = demo_engagement.networks_report_numbers(
                    engine, settings, tenant_id, social, ads, timeline.end
                )
                _step(
                    f"metrics fetched from the X, LinkedIn and Google Ads stand-ins through the "
                    f"channels' plugins: {fetched.accounts} accounts, {fetched.events} metric "
                    f"events ({fetched.by_kind.get('impressions', 0):,.0f} impressions, "
                    f"{fetched.by_kind.get('engagements', 0):,.0f} engagements, "
                    f"{fetched.by_kind.get('link_clicks', 0):,.0f} link clicks)"
                )
                page = demo_digital.a_visitor_fills_the_form(engine, settings, tenant_id)
                if page:
                    _step(f"a visitor sent the lead form on {page}")
            finally:
                server.shutdown()
                server.server_close()
    _report(engine, tenant_id, sink, folder)  # after the sink stopped: its counts are final
    demo_digital.report(engine, tenant_id, social, ads)
    end = timeline.end
    _step(f"mail feedback: {demo_feedback.feed_reports(engine, tenant_id, folder, end)}")
    stages = demo_funnel.record_results(engine, tenant_id, folder, "cloud-security", end)
    reports = demo_funnel.write_all_reports(engine, tenant_id, folder, end)
    _step(
        f"MDF spend recorded and {stages} lead stages imported from a CRM export; reports "
        f"written: {reports.programme} and {len(reports.partners)} partner reports"
    )
    links = demo_people.sign_in_links(engine, settings, tenant_id, now)
    engine.dispose()
    for extra in sink.saved()[SAMPLE:]:
        extra.unlink()
    _try_next(folder, review, timeline, links)


def _fresh_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("partnercast.db", "partnercast.db-wal", "partnercast.db-shm"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "outbox", ignore_errors=True)
    shutil.rmtree(folder / "previews", ignore_errors=True)


def _demo_keys(folder: Path) -> KeyMaterial:
    """The demo's own keys, new each run (its database is too), in its folder's key file
    (owner-only) for the commands it suggests; never printed."""
    keys = generate_keys()
    write_key_file(folder / KEY_FILE_NAME, keys, replace=True)
    return keys


def _set_up_tenant(
    engine: Engine, folder: Path, partners: int, contacts: int, now: datetime
) -> int:
    with plain_session(engine) as session:
        tenant = Tenant(
            slug=TENANT_SLUG, name=TENANT_NAME, brand=dict(TENANT_BRAND), created_at=now
        )
        session.add(tenant)
    tenant_id = tenant.id or 0
    rng = random.Random(2026)
    partner_data = make_partner_rows(partners, rng)
    partners_csv = write_csv(folder / "partners.csv", partner_data)
    contacts_csv = write_csv(folder / "contacts.csv", contact_rows(partner_data, contacts, rng))
    with tenant_session(engine, tenant_id) as session:
        segments = load_segments_file(session, _example("tenants", "segments.yaml"), now=now)
        partner_report = import_partners(session, partners_csv, now=now)
    with tenant_session(engine, tenant_id) as session:
        contact_report = import_contacts(session, contacts_csv, None, now=now)
    _step(
        f"tenant [bold]{TENANT_NAME}[/] with {len(segments)} segments: "
        + ", ".join(segment.key for segment in segments)
    )
    _step(f"partners imported from {partners_csv.name}: {partner_report.created} created")
    _step(
        f"contacts imported from {contacts_csv.name}: {contact_report.created} created, "
        f"{len(contact_report.rejected)} rejected:"
    )
    for rejection in contact_report.rejected:
        console.print(f"    [yellow]line {rejection.line}:[/] {rejection.reason}", highlight=False)
    return tenant_id


def _load_campaign(engine: Engine, tenant_id: int, now: datetime) -> None:
    folder = _example("campaigns", "cloud-security")
    loaded = read_campaign(folder, channel_template_suffixes())
    with tenant_session(engine, tenant_id) as session:
        result = store_campaign(session, loaded, now=now)
        report = enroll_partners(session, result.campaign, now=now, readiness=missing_by_partner)
    spec = loaded.spec
    _step(
        f"campaign [bold]{spec.name}[/] ({spec.cycle_days} days, {len(spec.touches)} touches, "
        f"locales {', '.join(spec.locales)}) stored as version {result.version.number}"
    )
    _step(f"{len(report.invited)} partners invited by segment")


def _partner_copy(partner: Partner, number: int) -> dict[str, object]:
    city = (
        partner.postal_address.split(",")[-2].strip()
        if "," in partner.postal_address
        else partner.region
    )
    if "de" in partner.languages:
        return {
            "headline": {
                "de": "{{ first_name }}, Ihre Hybrid Cloud sicher in 45 Tagen – mit "
                + partner.name,
                "en": "{{ first_name }}, secure your hybrid cloud in 45 days with " + partner.name,
            },
            "intro": {
                "de": f"Als Ihr Partner in {city} prüfen wir Ihre Cloud-Umgebung und zeigen, "
                "wo Northwind Shield Lücken schließt.",
                "en": f"As your partner in {city}, we review your cloud set-up and show where "
                "Northwind Shield closes the gaps.",
            },
            "signature_line": partner.signature,
        }
    return {
        "headline": f"{{{{ first_name }}}}, lock down your hybrid cloud with {partner.name}",
        "intro": f"Our team in {city} has helped {10 + number} companies like {{{{ company }}}} "
        "secure their cloud. Here is what we would look at first.",
        "signature_line": partner.signature,
    }


def _partners_respond(
    engine: Engine, settings: Settings, tenant_id: int, folder: Path, start: datetime
) -> None:
    counts: dict[str, int] = {}
    with tenant_session(engine, tenant_id) as session:
        campaign = get_campaign(session, "cloud-security")
        enrolled = session.exec(
            select(Enrollment, Partner)
            .join(Partner, col(Partner.id) == Enrollment.partner_id)
            .where(Enrollment.campaign_id == campaign.id)
            .order_by(col(Partner.external_id))
        ).all()
        roles = assign_roles(len(enrolled))
        for position, (enrollment, partner) in enumerate(enrolled):
            role = roles.get(position, "approve")
            now = start + timedelta(hours=position)  # one partner an hour
            if position == TRIES_BAD_TEXT:
                _show_refused_customisation(session, enrollment, partner, now)
            if role.startswith("decline"):
                note = DECLINE_NOTES[int(role.split(":")[1])]
                demo_digital.partner_decides(
                    session, enrollment, partner, decisions.DECLINE, now, note=note
                )
            elif role == "silent":
                approval.transition(session, enrollment, "submit", actor="concierge", now=now)
            else:
                copy = _partner_copy(partner, position)
                customise(session, enrollment, copy, actor="partner", now=now)
                if role == "auto":
                    set_auto_approve(session, enrollment, True)
                approval.transition(session, enrollment, "submit", actor="concierge", now=now)
                if role == "changes":
                    demo_digital.partner_decides(
                        session,
                        enrollment,
                        partner,
                        decisions.REQUEST_CHANGES,
                        now,
                        note="Please add our own event date before we approve.",
                    )
                elif enrollment.state == approval.SUBMITTED:
                    demo_digital.partner_decides(
                        session, enrollment, partner, decisions.APPROVE, now
                    )
            counts[enrollment.state] = counts.get(enrollment.state, 0) + 1
    _step(
        "partners responded: "
        + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
    )
    previews = folder / "previews"
    previews.mkdir(exist_ok=True)
    german = next((p.external_id for _, p in enrolled if "de" in p.languages), None)
    english = next((p.external_id for _, p in enrolled if "de" not in p.languages), None)
    wanted = [(german, "de"), (english, "en")]
    with tenant_session(engine, tenant_id) as session:
        for external_id, locale in [(e, loc) for e, loc in wanted if e]:
            result = render_preview(
                session, settings, "cloud-security", external_id, "intro", locale
            )
            (previews / f"{external_id}-intro-{locale}.html").write_text(
                result.html, encoding="utf-8"
            )
    _step(f"previews written to {previews}")


def _show_refused_customisation(
    session: Session, enrollment: Enrollment, partner: Partner, now: datetime
) -> None:
    bad = {
        "headline": "{{ ''.__class__.__mro__ }} " + "Act now! " * 12,
        "offer_terms": "50% off everything",
    }
    try:
        with session.begin_nested():
            customise(session, enrollment, bad, actor="partner", now=now)
    except Problems as refused:
        console.print(
            f"  [yellow]{partner.external_id} tried to save an invalid customisation; refused:[/]"
        )
        for problem in refused.problems:
            console.print(f"    - {problem}", highlight=False)


def _expected_messages(engine: Engine, tenant_id: int) -> int:
    with tenant_session(engine, tenant_id) as session:
        approved = [
            e.partner_id
            for e in session.exec(
                select(Enrollment).where(Enrollment.state == approval.APPROVED)
            ).all()
        ]
        contacts = session.exec(
            select(func.count())
            .select_from(Contact)
            .where(col(Contact.partner_id).in_(approved), Contact.consent == True)  # noqa: E712
        ).one()
        campaign = get_campaign(session, "cloud-security")
        from partnercast.campaigns.store import latest_version, version_spec

        touches = sum(
            1
            for t in version_spec(latest_version(session, campaign)).touches
            if t.channel == "email"
        )
    return int(contacts) * touches


def _run_cycle(
    engine: Engine, settings: Settings, tenant_id: int, sink: SmtpSinkProcess, start: datetime
) -> str:
    """The cycle from ``start`` on a simulated clock; returns the partner the weekly review
    was held with."""
    with tenant_session(engine, tenant_id) as session:
        campaign = get_campaign(session, "cloud-security")
        cycle = start_cycle(session, campaign, start, now=start)
        days = (cycle.ends_at - cycle.starts_at).days
    _step(f"cycle {cycle.number} runs {days} days from {start:%Y-%m-%d} on a simulated clock")
    total = _expected_messages(engine, tenant_id)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    unsubscribed = 0
    engaged, review = demo_engagement.Engagement(), ""
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("day  0", total=total)
        for day in range(days + 1):
            now = start + timedelta(days=day, hours=1)
            progress.update(task, description=f"day {day:2d} {now:%d %b}")
            tick(
                engine,
                settings,
                now,
                on_progress=lambda n: progress.advance(task, n),
                after=[scan_after_tick],
            )
            if day == 2 and not unsubscribed:
                unsubscribed = _some_recipients_unsubscribe(sink)
            if day == READERS_DAY:
                readers = demo_engagement.readers(engine, settings, tenant_id, sink.saved(), now)
                engaged = demo_engagement.open_and_click(readers)
            if day == REVIEW_DAY:
                review = demo_concierge.weekly_review(engine, tenant_id, now)
        progress.update(task, completed=total)
    last_day = start + timedelta(days=days, hours=1)
    again = tick(engine, settings, last_day, after=[scan_after_tick])
    _step(
        f"{unsubscribed} recipients clicked one-click unsubscribe (HTTP POST) after the first email"
    )
    _step(f"ticking the last day again sends {again.sent} messages: dispatch is idempotent")
    _step(
        f"readers of the first email, over real HTTP GETs to the engine's tracker: "
        f"{engaged.opens} loaded the open pixel and {engaged.clicks} followed a tracked link, "
        f"from {engaged.partners} partners' mailings ({engaged.messages:,} messages read back "
        "from the SMTP server; the better partners' contacts engage more)"
    )
    if review:
        _step(f"weekly review held with {review} on day {REVIEW_DAY}, its notes kept")
    _second_cycle(engine, settings, tenant_id, start + timedelta(days=days + 1))
    return review


def _second_cycle(engine: Engine, settings: Settings, tenant_id: int, starts_at: datetime) -> None:
    """Cycle 2 starts the day after cycle 1 ends; the demo stops after its first email,
    so that the reports and the score's trend compare two cycles."""
    with tenant_session(engine, tenant_id) as session:
        campaign = get_campaign(session, "cloud-security")
        cycle = start_cycle(session, campaign, starts_at, now=starts_at)
    sent = 0
    for day in range(SECOND_CYCLE_DAYS):
        moment = starts_at + timedelta(days=day, hours=1)
        sent += tick(engine, settings, moment, after=[scan_after_tick]).sent
    _step(
        f"cycle {cycle.number} started {starts_at:%Y-%m-%d}; its first email went to {sent:,} "
        f"contacts; the demo stops on its day {SECOND_CYCLE_DAYS - 1}, the rest stays planned"
    )


def _some_recipients_unsubscribe(sink: SmtpSinkProcess) -> int:
    """Recipients press 'unsubscribe' in their mail client: RFC 8058 POSTs to the link."""
    saved = sink.saved()
    messages = [
        message_from_bytes(path.read_bytes())
        for path in saved[:: max(1, len(saved) // UNSUBSCRIBERS)]
    ]
    done = 0
    for message in messages[:UNSUBSCRIBERS]:
        match = re.search(r"<(https?://[^>]+)>", str(message["List-Unsubscribe"]))
        if not match:
            continue
        request = urllib.request.Request(
            match.group(1), data=b"List-Unsubscribe=One-Click", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            done += response.status == 200
    return done


def _report(engine: Engine, tenant_id: int, sink: SmtpSinkProcess, folder: Path) -> None:
    with tenant_session(engine, tenant_id) as session:
        rows = partner_rows(session, get_campaign(session, "cloud-security"))
    console.print(
        partner_table(
            rows,
            show_names=console.width >= 100,
            title="cloud-security, cycles 1 and 2: each partner's state and touches",
        )
    )
    received = sink.counts
    console.print(
        f"The SMTP server received [bold]{received.count:,}[/] messages "
        f"and refused {received.refused} (hard bounces, now suppressed); "
        f"{received.count - received.unparsable:,} parsed back as "
        "multipart MIME with a plain-text part, List-Unsubscribe and List-Unsubscribe-Post headers."
    )
    if received.unparsable:
        raise UserError(f"{received.unparsable} messages did not parse back: this is a bug")


def _staff(engine: Engine, tenant_id: int, now: datetime) -> None:
    staffing = demo_concierge.set_up(engine, tenant_id, now)
    _step(
        f"{staffing.concierges} concierges (de+en, en, en) hold {staffing.assigned} partners, "
        f"cap {staffing.cap} per language for this small programme; readiness checklists: "
        f"{staffing.ready} partners ready, {staffing.not_ready} missing an item"
    )
    for warning in staffing.warnings or []:
        console.print(f"    [yellow]capacity:[/] {warning}", highlight=False)


def _people(engine: Engine, tenant_id: int, now: datetime) -> None:
    people = demo_people.set_up(engine, tenant_id, now)
    _step(
        f"people who sign in to the portal and dashboard: an agency admin, "
        f"{people.concierges} concierges, a vendor marketer and {people.partner_users} "
        "partner users (each partner's point of contact)"
    )


def _try_next(folder: Path, review: str, timeline: Timeline, links: list[demo_people.Link]) -> None:
    console.rule("[bold]try next")
    partner = review or "P001"
    next_review = timeline.cycle_start + timedelta(days=REVIEW_DAY + 7, hours=1)
    console.print(
        f"  export PARTNERCAST_DATABASE_URL=sqlite:///{folder / 'partnercast.db'}\n"
        f"  export PARTNERCAST_KEY_FILE={folder / KEY_FILE_NAME}\n"
        f"  export PARTNERCAST_TENANT={TENANT_SLUG}\n"
        "  partnercast tasks                  # what the concierges should do next\n"
        "  partnercast concierges list        # load per language against the cap\n"
        "  partnercast concierges balance     # a balanced assignment (--apply makes it)\n"
        "  partnercast partners readiness     # who is ready, who misses what\n"
        f"  partnercast reviews {partner}        # the weekly review's notes\n"
        f"  partnercast review {partner} --at {next_review:%Y-%m-%dT%H:%MZ}   # the next agenda\n"
        "  partnercast metrics --by cycle     # opens, clicks, social, leads, ROI\n"
        "  partnercast score                  # contenders and pretenders\n"
        "  partnercast status cloud-security\n"
        f"  open {folder / 'reports' / 'index.html'}, {folder / 'previews'}, "
        f"{folder / 'outbox'}\n"
        "  partnercast serve   # then open /p/northwind/P001/cloud-security-digital/",
        highlight=False,
    )
    if links:
        console.print(
            "  and sign in (each link works once, for 7 days; `partnercast serve` first):",
            highlight=False,
        )
    for link in links:
        console.print(f"    {link.who}, {link.email}:", highlight=False, markup=False)
        console.print(f"    {link.url}", highlight=False, markup=False, soft_wrap=True)
