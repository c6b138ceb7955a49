"""The example third-party package (examples/webhook-channel), installed from outside the
tree: discovered by `partnercast plugins`, passing the kit in its own test suite, and
publishing in a real cycle to a local HTTP receiver, once per dispatch even when retried."""

from __future__ import annotations

import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import support.world as world_module
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import START, World, build_world, respond, start

from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core import accounts, outbox
from partnercast.core.models import Dispatch
from partnercast.core.secrets import secret_box
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins.manager import load_plugins
from partnercast.tenants.models import Partner

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "webhook-channel"
SECRET = "whsec-0123456789abcdef"


def build_wheel(project: Path, out: Path) -> Path:
    """A pure-Python wheel of ``project`` from its own pyproject.toml.

    Built by hand (a wheel is a zip with a dist-info folder) so that the test needs no
    network and no `wheel` package: pip then installs it like any downloaded wheel.
    """
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    name, version = meta["name"], meta["version"]
    stem = f"{name.replace('-', '_')}-{version}"
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
        for group, points in meta["entry-points"].items()
    )
    files = {
        f"{stem}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{stem}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{stem}.dist-info/entry_points.txt": entry_points,
    }
    for source in sorted((project / "partnercast_webhook").glob("*.py")):
        files[f"partnercast_webhook/{source.name}"] = source.read_text()
    records = [f"{path},," for path in files] + [f"{stem}.dist-info/RECORD,,"]
    files[f"{stem}.dist-info/RECORD"] = "\n".join(records) + "\n"
    wheel = out / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, built as a wheel and `pip install --target`ed outside the tree."""
    work = tmp_path_factory.mktemp("webhook")
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(target), str(build_wheel(EXAMPLE, work))],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return target


def _env(target: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(target), "COLUMNS": "200"}


def test_partnercast_plugins_discovers_the_installed_package(
    installed: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "partnercast", "plugins"],
        env=_env(installed), cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "partnercast-webhook" in result.stdout
    assert "webhook (Webhook)" in result.stdout and "email (Email)" in result.stdout


def test_its_own_suite_passes_the_kit_from_outside_the_tree(installed: Path) -> None:
    tests = shutil.copytree(EXAMPLE / "tests", installed.parent / "tests")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        env=_env(installed), cwd=installed.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "publish/idempotent PASSED" in result.stdout or " passed" in result.stdout


# --- a real cycle -----------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """A partner's webhook endpoint: checks the signature, drops repeated keys."""

    posts: ClassVar[list[dict[str, object]]] = []
    seen: ClassVar[dict[str, str]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET.encode(), body, "sha256").hexdigest()
        if not hmac.compare_digest(expected, self.headers.get("X-Partnercast-Signature", "")):
            self.send_response(401)
            self.end_headers()
            return
        key = self.headers["Idempotency-Key"]
        if key not in self.seen:
            self.seen[key] = f"recv-{len(self.seen) + 1}"
            self.posts.append(json.loads(body))
        answer = json.dumps({"id": self.seen[key]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    Receiver.posts, Receiver.seen = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def campaign_with_webhook(tmp_path: Path) -> Path:
    folder = shutil.copytree(world_module.CAMPAIGN, tmp_path / "campaign")
    with (folder / "campaign.yaml").open("a", encoding="utf-8") as handle:
        handle.write(
            "  - key: announce\n    channel: webhook\n    day: 2\n"
            "    template: webhook/announce\n    content:\n"
            '      title: "{{ vars.product }} is here"\n'
        )
    (folder / "templates" / "webhook").mkdir()
    for locale in ("en", "de"):
        (folder / "templates" / "webhook" / f"announce.{locale}.txt").write_text(
            "{{ vars.product }}: 45 days to an audit-ready hybrid cloud."
        )
    return folder


@pytest.fixture
def webhook_world(
    engine: Engine,
    tmp_path: Path,
    installed: Path,
    campaign_with_webhook: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setattr(world_module, "CAMPAIGN", campaign_with_webhook)
    monkeypatch.setattr(
        world_module, "channel_template_suffixes", lambda: {"email": ".mjml", "webhook": ".txt"}
    )
    with SmtpSink() as sink:
        yield build_world(engine, tmp_path / "world", sink.port)


def _connect_webhook(world: World, url: str) -> int:
    account = {"url": url, "secret": SecretStr(SECRET)}
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
        from partnercast_webhook.channel import WebhookAccount

        accounts.connect_account(
            session,
            partner_id=partner.id or 0,
            channel="webhook",
            account=WebhookAccount(**account),
            box=secret_box(world.settings),
            now=utcnow(),
        )
        return partner.id or 0


def test_a_cycle_posts_the_touch_once_to_the_partners_webhook(
    webhook_world: World, receiver: ThreadingHTTPServer
) -> None:
    world = webhook_world
    plugins = load_plugins()  # entry points: the installed package is on sys.path
    assert "webhook" in plugins.channel_classes()
    partner_id = _connect_webhook(world, f"http://127.0.0.1:{receiver.server_port}/hook")
    respond(world, {"P001": "approve"})
    start(world)
    for day in range(0, 4):
        tick(
            world.engine,
            world.settings,
            START + timedelta(days=day, hours=1),
            plugins=plugins,
            after=[scan_after_tick],
        )

    assert len(Receiver.posts) == 1
    assert Receiver.posts[0]["title"] == "Northwind Shield is here"
    with tenant_session(world.engine, world.tenant_id) as session:
        dispatch = session.exec(
            select(Dispatch).where(Dispatch.channel == "webhook", Dispatch.partner_id == partner_id)
        ).one()
        assert (dispatch.state, dispatch.external_ids) == (outbox.DONE, ["recv-1"])
        # A retried dispatch (say the worker died after the post was recorded) is never
        # published again: it has its external ids.
        dispatch.state = outbox.PENDING
        dispatch_id = dispatch.id
    tick(
        world.engine,
        world.settings,
        START + timedelta(days=4),
        plugins=plugins,
        after=[scan_after_tick],
    )
    assert len(Receiver.posts) == 1 and len(Receiver.seen) == 1
    with tenant_session(world.engine, world.tenant_id) as session:
        again = session.get(Dispatch, dispatch_id)
        assert again is not None
        assert (again.state, again.last_error) == (outbox.DONE, "already published")
