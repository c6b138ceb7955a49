"""Proof that the published development key forges nothing: a click redirect, another
tenant's partner results page, an unsubscribe, and a stored secret decrypted, all tried
against `partnercast serve` started the way the README says (`partnercast init`, then
`partnercast serve`, with nothing else set), over real HTTP. Each forgery is paired with the
genuine request made the same way with the real keys, which works: so the forgery fails
because of the key, not because it was malformed."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.world import START, build_world, respond, run_days, start

from partnercast.core.keys import KEY_FILE_NAME
from partnercast.core.secrets import SecretBox
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.models import CrmSecret
from partnercast.funnel.partner_link import results_url
from partnercast.tenants.models import Partner, Suppression

PUBLISHED = "development-only-secret-key-change-me"
"""The key the source published before keys were generated at set-up."""
READY = re.compile(r"serving on http://127\.0\.0\.1:(\d+)")
SHIM = Path(__file__).resolve().parents[1] / "support" / "clock_shift"
KEY_VARIABLES = ("PARTNERCAST_SECRET_KEY", "PARTNERCAST_ENCRYPTION_KEYS", "PARTNERCAST_KEY_FILE")


@contextmanager
def serving(folder: Path, env: dict[str, str]) -> Iterator[str]:
    """`partnercast serve --port 0` in its own process, in ``folder``; its base URL."""
    out = (folder / "serve.out").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "partnercast", "serve", "--port", "0"],
        stdout=out,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not (found := READY.search((folder / "serve.out").read_text())):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        out.close()


def _published_fernet_key() -> bytes:
    """The encryption key the engine derived from the published key when none was set."""
    digest = hashlib.sha256(b"partnercast-secrets:" + PUBLISHED.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@pytest.fixture
def readme_env(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    """What the README's shell has: the database URL, no key of any kind."""
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return {**os.environ, "COLUMNS": "200"}


def _in_the_worlds_week(env: dict[str, str]) -> dict[str, str]:
    """The server's clock a day after the world's cycle started (its links are checked
    for age on that clock), whatever the date and any suite-wide shift: the clock-shift
    shim (tests/support/clock_shift) moves the child's real time by the days given."""
    shifted = int(env.get("TEST_CLOCK_SHIFT_DAYS") or 0)  # this process is that far ahead
    real_now = utcnow() - timedelta(days=shifted)
    days = (START + timedelta(days=1) - real_now).days
    path = os.pathsep.join(filter(None, [str(SHIM), env.get("PYTHONPATH")]))
    return {**env, "TEST_CLOCK_SHIFT_DAYS": str(days), "PYTHONPATH": path}


def test_the_published_key_forges_nothing_against_a_readme_server(
    readme_env: dict[str, str], cli, engine: Engine, sink: SmtpSink, tmp_path: Path
) -> None:
    cli("init")  # as the README says: the keys in ./partnercast-keys.toml, then serve
    assert (tmp_path / KEY_FILE_NAME).exists()
    real = load_settings()
    north = build_world(engine, tmp_path / "north", sink.port)
    south = build_world(engine, tmp_path / "south", sink.port, slug="southwind")
    with tenant_session(engine, north.tenant_id) as session:
        first = session.exec(select(Partner).order_by(col(Partner.external_id))).first()
        assert first is not None
    respond(north, {first.external_id: "approve"})
    start(north)
    assert run_days(north, 0, 0) > 0
    page = sink.received.messages[0].get_body(preferencelist=("html",)).get_content()
    secret = cli("crm", "secret", "--tenant", "northwind").stdout.split()[0]

    with serving(tmp_path, _in_the_worlds_week(readme_env)) as base:
        # 1. A click redirect to a target the engine never signed.
        link = re.findall(r"https?://[^/\"']+/t/c/([^/\"']+)/([^\"'/]+)", page)[0]
        link_token, rcpt_token = link
        payload = URLSafeTimedSerializer("unused", salt="x").loads_unsafe(link_token)[1]
        forged_link = URLSafeTimedSerializer(PUBLISHED, salt="partnercast.track.link").dumps(
            [*payload[:-1], "https://evil.example/"]
        )
        ids = ".".join(rcpt_token.split(".")[:3])
        forged_rcpt = TimestampSigner(PUBLISHED, salt="partnercast.track.recipient").sign(ids)
        forged = requests.get(
            f"{base}/t/c/{forged_link}/{forged_rcpt.decode()}", allow_redirects=False, timeout=30
        )
        assert forged.status_code == 404 and "Location" not in forged.headers
        genuine = requests.get(f"{base}/t/c/{link_token}/{rcpt_token}", allow_redirects=False)
        assert genuine.status_code in (302, 303, 307), genuine.text[:200]
        assert "evil" not in genuine.headers["Location"]

        # 2. Another tenant's partner results page.
        published = real.model_copy(update={"secret_key": SecretStr(PUBLISHED)})
        with tenant_session(engine, south.tenant_id) as session:
            theirs = session.exec(select(Partner)).first()
            assert theirs is not None
            forged_url = results_url(session, published, theirs.external_id, now=utcnow())
            real_url = results_url(session, real, theirs.external_id, now=utcnow())
        path = forged_url.split("/partner/", 1)[1]
        answer = requests.get(f"{base}/partner/{path}", timeout=30)
        assert answer.status_code in (400, 403, 404) and theirs.name not in answer.text
        own = requests.get(f"{base}/partner/{real_url.split('/partner/', 1)[1]}", timeout=30)
        assert own.status_code == 200 and theirs.name in own.text

        # 3. An unsubscribe (one-click POST) for a contact of the first tenant.
        unsubscribed = requests.post(f"{base}/u/{forged_rcpt.decode()}", timeout=30)
        assert unsubscribed.status_code == 400
        with tenant_session(engine, north.tenant_id) as session:
            assert session.exec(select(Suppression)).all() == []
        assert requests.post(f"{base}/u/{rcpt_token}", timeout=30).status_code == 200
        with tenant_session(engine, north.tenant_id) as session:
            assert len(session.exec(select(Suppression)).all()) == 1

    # 4. A stored secret, decrypted with the key derived from the published one.
    with tenant_session(engine, north.tenant_id) as session:
        sealed = session.exec(select(CrmSecret)).one().sealed
    with pytest.raises(InvalidToken):
        Fernet(_published_fernet_key()).decrypt(sealed.encode())
    keys = [key.get_secret_value() for key in real.encryption_keys]
    assert SecretBox(keys).open(sealed) == {"secret": secret}


def test_serve_refuses_the_published_key(
    readme_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "partnercast", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**readme_env, "PARTNERCAST_SECRET_KEY": PUBLISHED},
    )
    assert done.returncode == 1 and "serving on" not in done.stdout
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0
    assert "the development key published" in done.stderr and PUBLISHED not in done.stderr
