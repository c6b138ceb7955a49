"""The demo makes the people who sign in and ends with a sign-in link for a partner and a
concierge: served by the engine (as after `partnercast serve`), each link signs its person
in, the partner to the portal and the concierge to the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from conftest import Cli
from sqlmodel import select
from support.browser import serve

from partnercast.core.db import make_engine
from partnercast.core.keys import KEY_FILE_NAME, read_key_file
from partnercast.core.tenancy import plain_session
from partnercast.demo.people import SERVE_ADDRESS
from partnercast.tenants.access import Role
from partnercast.tenants.access_models import Membership, User

LINK = re.compile(r"^\s+(http\S+/sign-in/\S+)$", re.MULTILINE)


def test_the_demo_prints_links_that_sign_in_a_partner_and_a_concierge(
    cli: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "demo"
    out = cli("demo", "--folder", str(folder), "--partners", "6", "--contacts", "100").stdout
    assert "people who sign in to the portal and dashboard" in " ".join(out.split())
    links = LINK.findall(out)
    assert len(links) == 2 and all(link.startswith(SERVE_ADDRESS) for link in links)
    engine = make_engine(f"sqlite:///{folder / 'partnercast.db'}")
    with plain_session(engine) as session:
        roles = [m.role for m in session.exec(select(Membership)).all()]
        assert roles.count(Role.AGENCY_ADMIN.value) == 1
        assert roles.count(Role.CONCIERGE.value) == 3
        assert roles.count(Role.VENDOR_MARKETER.value) == 1
        assert roles.count(Role.PARTNER.value) == 6
        concierge_users = session.exec(
            select(Membership).where(Membership.role == Role.CONCIERGE.value)
        ).all()
        assert all(m.concierge_id for m in concierge_users)  # linked to their Concierge rows
    keys = read_key_file(folder / KEY_FILE_NAME)
    with serve(
        engine, secret_key=keys["secret_key"], encryption_keys=keys["encryption_keys"]
    ) as server:
        homes = []
        for link in links:
            browser = requests.Session()
            path = link.removeprefix(SERVE_ADDRESS)
            page = browser.get(server.path(path), timeout=60)
            assert page.status_code == 200, page.text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token
            signed = browser.post(
                server.path(path), data={"csrf_token": token[1]}, allow_redirects=False, timeout=60
            )
            assert signed.status_code == 303
            home = browser.get(server.path("/home"), allow_redirects=False, timeout=60)
            homes.append(home.headers["location"])
        assert homes == ["/portal/northwind", "/dashboard/northwind"]
    with plain_session(engine) as session:
        signed_in = session.exec(select(User).where(User.last_sign_in_at.is_not(None))).all()  # type: ignore[union-attr]
        assert len(signed_in) == 2
    engine.dispose()
