"""Sign-in by magic link through the engine's own HTTP server: asking for a link (the same
answer for any address, a rate limit), the link's page (GET changes nothing), the button
(POST signs in once), refused links (used, expired, altered), the session cookie's flags,
CSRF, sign-out, and switching between vendors without leaving one's own."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlmodel import func, select
from starlette.exceptions import HTTPException
from support.browser import LiveServer, serve
from support.signin_world import People, add_partner, add_user, link_in, wait_for_mail

from partnercast.core.tenancy import plain_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.access import Role
from partnercast.tenants.access_models import SignInLink, User, WebSession
from partnercast.tenants.users import principal_for_user
from partnercast.web import magic_links, signin
from partnercast.web.identity import tenant_for
from partnercast.web.sessions import COOKIE

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_is_when_the_test_runs() -> None:
    """NOW is read when each test starts, not when the module is imported: links live 15
    minutes, and in the whole suite a test runs long after its module was collected."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"|"X-CSRF-Token": "([^"]+)"')
PAT = "pat@partner-a.example"


@pytest.fixture
def people(engine: Engine, tenant_a: int, tenant_b: int) -> People:
    partner_a = add_partner(engine, tenant_a, "Alpha Systems", NOW)
    partner_a2 = add_partner(engine, tenant_a, "Another One", NOW)
    partner_b = add_partner(engine, tenant_b, "Beta Works", NOW)
    add_user(engine, PAT, Role.PARTNER, NOW, tenant_id=tenant_a, partner_id=partner_a, name="Pat")
    return People(tenant_a, tenant_b, partner_a, partner_b, partner_a2)


def _token(page: str) -> str:
    """The page's CSRF token: its form's field, else the layout's htmx header."""
    found = TOKEN.search(page)
    assert found, page
    return found.group(1) or found.group(2)


def _ask(server: LiveServer, browser: requests.Session, email: str) -> requests.Response:
    form = browser.get(server.path("/sign-in"), timeout=60)
    return browser.post(
        server.path("/sign-in"),
        data={"email": email, "csrf_token": _token(form.text), "next": ""},
        timeout=60,
        allow_redirects=False,
    )


def _press(server: LiveServer, browser: requests.Session, link: str) -> requests.Response:
    page = browser.get(link, timeout=60)
    assert page.status_code == 200, page.text
    return browser.post(
        link, data={"csrf_token": _token(page.text)}, timeout=60, allow_redirects=False
    )


def _set_cookie(answer: requests.Response) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in answer.raw.headers.getlist("set-cookie"):
        cookie.load(header)
    return cookie


def _sessions(engine: Engine) -> int:
    with plain_session(engine) as session:
        return session.exec(select(func.count()).select_from(WebSession)).one()


def test_a_link_asked_for_signs_in_once(
    live_server: LiveServer, sink: SmtpSink, people: People, engine: Engine
) -> None:
    browser = requests.Session()
    answer = _ask(live_server, browser, "  Pat@Partner-A.example ")
    assert answer.status_code == 200 and "on its way" in answer.text
    (message,) = wait_for_mail(sink, 1)
    assert message["To"] == PAT
    assert message["Subject"] == "Your sign-in link for partnercast"
    link = link_in(message)
    assert link.startswith(live_server.url + "/sign-in/")

    opened = browser.get(link, timeout=60)  # what a mail scanner does: nothing happens
    assert opened.status_code == 200 and PAT in opened.text
    assert COOKIE not in browser.cookies and _sessions(engine) == 0
    assert (
        browser.get(live_server.path("/home"), allow_redirects=False, timeout=60).headers[
            "location"
        ]
        == "/sign-in?next=/home"
    )

    signed = _press(live_server, browser, link)
    assert (signed.status_code, signed.headers["location"]) == (303, "/home")
    home = browser.get(live_server.path("/home"), allow_redirects=False, timeout=60)
    assert (home.status_code, home.headers["location"]) == (303, "/portal/vendor-a")
    with plain_session(engine) as session:
        user = session.exec(select(User).where(User.email == PAT)).one()
        assert user.last_sign_in_at is not None

    again = requests.Session()  # the same link, used a second time: refused
    refused_page = again.get(link, timeout=60)
    assert refused_page.status_code == 410 and "no longer works" in refused_page.text
    replay = again.post(link, data={"csrf_token": _token(refused_page.text)}, timeout=60)
    assert replay.status_code == 410 and COOKIE not in again.cookies
    assert _sessions(engine) == 1


def test_the_session_cookie_is_http_only_lax_and_path_wide(
    live_server: LiveServer, sink: SmtpSink, people: People
) -> None:
    browser = requests.Session()
    _ask(live_server, browser, PAT)
    signed = _press(live_server, browser, link_in(wait_for_mail(sink, 1)[0]))
    morsel = _set_cookie(signed)[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # plain http, and the public address is http
    assert int(morsel["max-age"]) == 7 * 24 * 3600
    public_id, secret = morsel.value.split(".")
    with plain_session(live_server.engine) as session:
        row = session.exec(select(WebSession).where(WebSession.public_id == public_id)).one()
        assert secret not in row.secret_hash and len(row.secret_hash) == 64


def test_behind_https_the_cookie_is_secure(engine: Engine, sink: SmtpSink, people: People) -> None:
    with serve(engine, public_base_url="https://portal.example") as server:
        with plain_session(engine) as session:
            user = session.exec(select(User).where(User.email == PAT)).one()
            link = magic_links.issue(session, server.settings, user, now=NOW)
        assert link.url.startswith("https://portal.example/sign-in/")
        browser = requests.Session()
        page = browser.get(server.path(f"/sign-in/{link.token}"), timeout=60)
        anonymous = _set_cookie(page)["partnercast_csrf"]
        assert anonymous["secure"] is True  # requests keeps it for https: hand it back
        signed = browser.post(
            server.path(f"/sign-in/{link.token}"),
            data={"csrf_token": _token(page.text)},
            cookies={"partnercast_csrf": anonymous.value},
            headers={"Origin": "https://portal.example"},
            allow_redirects=False,
            timeout=60,
        )
        assert signed.status_code == 303
        assert _set_cookie(signed)[COOKIE]["secure"] is True


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    live_server: LiveServer, sink: SmtpSink, people: People, engine: Engine
) -> None:
    unknown = _ask(live_server, requests.Session(), "nobody@nowhere.example")
    known = _ask(live_server, requests.Session(), PAT)
    strip = re.compile(
        r'value="[^"]*"|"X-CSRF-Token": "[^"]*"|nobody@nowhere\.example|pat@partner-a\.example'
    )
    assert unknown.status_code == known.status_code == 200
    assert strip.sub("", unknown.text) == strip.sub("", known.text)
    assert wait_for_mail(sink, 1)[0]["To"] == PAT  # the known one's, and only it
    assert len(sink.received.messages) == 1
    with plain_session(engine) as session:
        assert [row.email for row in session.exec(select(SignInLink)).all()] == [PAT]
        assert (
            session.exec(select(User).where(User.email == "nobody@nowhere.example")).first() is None
        )


def test_not_an_address_is_said_beside_the_field(live_server: LiveServer) -> None:
    answer = _ask(live_server, requests.Session(), "not an address")
    assert answer.status_code == 422 and 'aria-invalid="true"' in answer.text


def test_link_requests_are_rate_limited_per_address_and_per_client(
    live_server: LiveServer, sink: SmtpSink, people: People
) -> None:
    live_server.at(NOW)
    browser = requests.Session()
    for _ in range(signin.PER_ADDRESS):
        assert _ask(live_server, browser, PAT).status_code == 200
    limited = _ask(live_server, browser, PAT)
    assert limited.status_code == 429 and "Wait a while" in limited.text
    # Another address from the same client still gets through, until the client's limit.
    for number in range(signin.PER_CLIENT - signin.PER_ADDRESS - 1):
        assert _ask(live_server, browser, f"other{number}@example.com").status_code == 200
    assert _ask(live_server, browser, "one-more@example.com").status_code == 429
    live_server.at(NOW + timedelta(hours=1))  # an hour later the buckets have refilled
    assert _ask(live_server, browser, PAT).status_code == 200
    assert len(wait_for_mail(sink, signin.PER_ADDRESS + 1)) == signin.PER_ADDRESS + 1


def _issue(engine: Engine, server: LiveServer, email: str, purpose: str = "sign-in") -> str:
    with plain_session(engine) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        return magic_links.issue(session, server.settings, user, now=NOW, purpose=purpose).url


def test_an_expired_link_is_refused_and_signs_nobody_in(
    live_server: LiveServer, people: People, engine: Engine
) -> None:
    link = _issue(engine, live_server, PAT)
    invitation = _issue(engine, live_server, PAT, magic_links.INVITATION)
    live_server.at(NOW + timedelta(minutes=15, seconds=1))
    browser = requests.Session()
    page = browser.get(link, timeout=60)
    assert page.status_code == 410
    assert browser.post(link, data={"csrf_token": _token(page.text)}, timeout=60).status_code == 410
    assert COOKIE not in browser.cookies and _sessions(engine) == 0
    # An invitation lasts 7 days: still good after 15 minutes, refused after a week.
    live_server.at(NOW + timedelta(days=7, seconds=1))
    assert requests.get(invitation, timeout=60).status_code == 410
    live_server.at(NOW + timedelta(days=6))
    assert _press(live_server, requests.Session(), invitation).status_code == 303


def test_an_altered_link_is_refused(
    live_server: LiveServer, people: People, engine: Engine
) -> None:
    link = _issue(engine, live_server, PAT)
    live_server.at(NOW)
    prefix, signature = link.rsplit(".", 1)
    flipped = "A" if signature[0] != "A" else "B"
    for altered in (f"{prefix}.{flipped}{signature[1:]}", link[:-12], link + "x"):
        browser = requests.Session()
        page = browser.get(altered, timeout=60)
        assert page.status_code in (404, 410)
        answer = browser.post(altered, data={"csrf_token": "x"}, timeout=60)
        assert answer.status_code in (403, 404, 410) and COOKIE not in browser.cookies
    assert _sessions(engine) == 0
    assert _press(live_server, requests.Session(), link).status_code == 303  # the real one works


def test_a_form_without_its_csrf_token_is_refused(
    live_server: LiveServer, people: People, engine: Engine, sink: SmtpSink
) -> None:
    browser = requests.Session()
    browser.get(live_server.path("/sign-in"), timeout=60)
    assert (
        browser.post(live_server.path("/sign-in"), data={"email": PAT}, timeout=60).status_code
        == 403
    )
    forged = browser.post(
        live_server.path("/sign-in"), data={"email": PAT, "csrf_token": "forged"}, timeout=60
    )
    assert forged.status_code == 403
    link = _issue(engine, live_server, PAT)
    live_server.at(NOW)
    browser.get(link, timeout=60)
    assert browser.post(link, timeout=60).status_code == 403
    assert COOKIE not in browser.cookies
    # Another site's page posting the right token from the victim's browser: refused by Origin.
    page = browser.get(link, timeout=60)
    cross = browser.post(
        link,
        data={"csrf_token": _token(page.text)},
        headers={"Origin": "https://evil.example"},
        timeout=60,
    )
    assert cross.status_code == 403
    signed = _press(live_server, browser, link)  # the link was not spent by the refusals
    assert signed.status_code == 303
    # Signed in: sign-out without the session's token does nothing.
    assert browser.post(live_server.path("/sign-out"), timeout=60).status_code == 403
    assert (
        browser.get(live_server.path("/home"), allow_redirects=False, timeout=60).headers[
            "location"
        ]
        == "/portal/vendor-a"
    )
    assert not sink.received.messages


def test_sign_out_ends_the_session(live_server: LiveServer, people: People, engine: Engine) -> None:
    link = _issue(engine, live_server, PAT)
    live_server.at(NOW)
    browser = requests.Session()
    _press(live_server, browser, link)
    stolen = browser.cookies[COOKIE]
    page = browser.get(live_server.path("/sign-in"), timeout=60, allow_redirects=False)
    assert page.headers["location"] == "/home"  # signed in: the sign-in page sends home
    token = _token(browser.get(live_server.path("/sign-in/spent"), timeout=60).text)
    out = browser.post(
        live_server.path("/sign-out"), data={"csrf_token": token}, allow_redirects=False, timeout=60
    )
    assert (out.status_code, out.headers["location"]) == (303, "/sign-in?signed_out=1")
    assert COOKIE not in browser.cookies
    assert (
        "You are signed out."
        in browser.get(live_server.path(out.headers["location"]), timeout=60).text
    )
    replayed = requests.get(
        live_server.path("/home"), cookies={COOKIE: stolen}, allow_redirects=False, timeout=60
    )
    assert replayed.headers["location"] == "/sign-in?next=/home"  # the copied cookie is worthless


def test_sessions_expire_idle_and_absolute(
    live_server: LiveServer, people: People, engine: Engine
) -> None:
    link = _issue(engine, live_server, PAT)
    live_server.at(NOW)
    browser = requests.Session()
    _press(live_server, browser, link)

    def home_at(moment: datetime) -> str:
        live_server.at(moment)
        return browser.get(live_server.path("/home"), allow_redirects=False, timeout=60).headers[
            "location"
        ]

    moment = NOW
    for _ in range(13):  # used every 11 hours: alive for 6 days
        moment += timedelta(hours=11)
        assert home_at(moment) == "/portal/vendor-a"
    assert home_at(NOW + timedelta(days=7, seconds=1)).startswith("/sign-in")  # absolute limit
    other = requests.Session()
    live_server.at(NOW)
    _press(live_server, other, _issue(engine, live_server, PAT))
    live_server.at(NOW + timedelta(hours=12, seconds=1))
    idle = other.get(live_server.path("/home"), allow_redirects=False, timeout=60)
    assert idle.headers["location"].startswith("/sign-in")


def test_one_person_switches_between_vendors_and_sees_only_their_own(
    live_server: LiveServer, people: People, engine: Engine
) -> None:
    add_user(engine, PAT, Role.PARTNER, NOW, tenant_id=people.tenant_b, partner_id=people.partner_b)
    add_user(
        engine,
        "solo@partner-a.example",
        Role.PARTNER,
        NOW,
        tenant_id=people.tenant_a,
        partner_id=people.partner_a2,
    )
    live_server.at(NOW)
    browser = requests.Session()
    _press(live_server, browser, _issue(engine, live_server, PAT))
    switched = browser.get(live_server.path("/home/vendor-b"), allow_redirects=False, timeout=60)
    assert (switched.status_code, switched.headers["location"]) == (303, "/portal/vendor-b")
    home = browser.get(live_server.path("/home"), allow_redirects=False, timeout=60)
    assert home.headers["location"] == "/portal/vendor-b"  # the vendor in view stays
    assert (
        browser.get(live_server.path("/home/vendor-a"), allow_redirects=False, timeout=60).headers[
            "location"
        ]
        == "/portal/vendor-a"
    )

    solo = requests.Session()
    _press(live_server, solo, _issue(engine, live_server, "solo@partner-a.example"))
    assert (
        solo.get(live_server.path("/home/vendor-b"), allow_redirects=False, timeout=60).status_code
        == 404
    )
    assert (
        solo.get(
            live_server.path("/home/no-such-vendor"), allow_redirects=False, timeout=60
        ).status_code
        == 404
    )
    for path in ("/portal/vendor-b", "/portal/vendor-b/results", "/portal/vendor-b/campaigns/1"):
        # Vendor B's portal, asked by a partner user of vendor A only: not found.
        assert (
            solo.get(live_server.path(path), allow_redirects=False, timeout=60).status_code == 404
        )
    assert solo.get(live_server.path("/portal/vendor-a"), timeout=60).status_code == 200
    assert browser.get(live_server.path("/portal/vendor-b"), timeout=60).status_code == 200
    with plain_session(engine) as session:
        solo_user = session.exec(select(User).where(User.email == "solo@partner-a.example")).one()
        principal = principal_for_user(session, solo_user.id or 0)
    assert tenant_for(principal, "vendor-a", engine).id == people.tenant_a
    with pytest.raises(HTTPException) as refused:
        tenant_for(principal, "vendor-b", engine)
    assert refused.value.status_code == 404
    scope = principal.partner_scope(people.tenant_a)
    assert scope.partner_ids == {people.partner_a2}  # not Alpha Systems, a sibling partner


def test_two_presses_of_one_link_at_once_sign_in_once(any_engine: Engine) -> None:
    """The link is used by UPDATE ... WHERE used_at IS NULL: on SQLite and PostgreSQL, of
    several requests racing with the same link exactly one signs in."""
    import threading

    from partnercast.core.settings import load_settings

    settings = load_settings(database_url=any_engine.url.render_as_string(hide_password=False))
    user_id = add_user(any_engine, PAT, Role.AGENCY_ADMIN, NOW)
    with plain_session(any_engine) as session:
        user = session.get(User, user_id)
        assert user is not None
        token = magic_links.issue(session, settings, user, now=NOW).token
    start = threading.Barrier(4)
    results: list[object] = []

    def press() -> None:
        start.wait()
        results.append(magic_links.redeem(any_engine, settings, token, now=NOW))

    threads = [threading.Thread(target=press) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) == 1
