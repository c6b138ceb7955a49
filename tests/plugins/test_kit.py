"""The conformance kit itself: a channel that keeps the contract passes every row, and a
sloppy one fails exactly the rows it should."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support.toy_channels import URL, SloppyChannel, ToyChannel

from partnercast.plugins.testing import (
    ChannelCase,
    ChannelConformance,
    HttpTransport,
    checks,
    run_conformance,
    simple_request,
)

SETTINGS = {"url": URL, "token": "tok-very-secret-1"}


def _request(content: Mapping[str, Any]):
    return simple_request("toy", content, content["text"])


def toy_case(**overrides: Any) -> ChannelCase:
    values: dict[str, Any] = {
        "channel": ToyChannel,
        "good_settings": SETTINGS,
        "bad_settings": {"no-token": {"url": URL}, "not-a-url": {**SETTINGS, "url": "nope"}},
        "good_content": {"text": "Hello partners"},
        "bad_content": {"empty": {"text": ""}, "too-long": {"text": "x" * 30}},
        "render_request": _request,
        "transport": HttpTransport("POST", URL, dedupe_header="Idempotency-Key"),
    }
    values.update(overrides)
    return ChannelCase(**values)


class TestToyChannelPassesTheKit(ChannelConformance):
    case = toy_case()


def test_rows_have_unique_ids_covering_every_failure() -> None:
    ids = [row.id for row in checks(toy_case())]
    assert len(ids) == len(set(ids))
    for expected in (
        "publish/http-401",
        "publish/http-429-retry-after",
        "publish/timeout",
        "publish/connection-dropped",
        "publish/idempotent",
        "secrets/not-in-logs",
        "validate/flags-too-long",
        "account/refuses-no-token",
    ):
        assert expected in ids


def test_a_sloppy_channel_fails_the_rows_it_breaks() -> None:
    case = toy_case(
        channel=SloppyChannel,
        good_settings={"url": URL, "token": "tok-very-secret-1"},
        bad_settings={"no-token": {"url": URL}},
        transport=HttpTransport("POST", URL),
    )
    failures = run_conformance(case)
    assert set(failures) == {
        "validate/flags-too-long",
        "secrets/not-in-repr",
        "secrets/not-in-str",
        "secrets/not-in-model_dump_json",
        "secrets/declared",
        "secrets/not-in-model_dump",
        "secrets/not-in-logs",
        "publish/http-400",
        "publish/http-401",
        "publish/http-403",
        "publish/http-404",
        "publish/http-422",
        "publish/http-429-retry-after",
        "publish/connection-dropped",
        "publish/idempotent",
    }
    assert "expected AuthError" in failures["publish/http-401"]
    assert "2 posts" in failures["publish/idempotent"]


def test_a_channel_without_transport_skips_publish_rows_with_a_reason() -> None:
    rows = {row.id: row for row in checks(toy_case(transport=None))}
    assert rows["publish/succeeds"].skip
    assert rows["secrets/not-in-logs"].skip
    assert not rows["render/returns-draft"].skip


def test_the_module_level_style_works_through_the_pytest11_plugin(tmp_path: Path) -> None:
    """A suite outside this repository gets the fixtures from the installed entry point."""
    (tmp_path / "test_mod.py").write_text(
        "from partnercast.plugins.testing import ChannelCase, run_check, simple_request\n"
        "from support.toy_channels import ToyChannel, URL\n"
        "conformance_case = ChannelCase(\n"
        "    channel=ToyChannel, good_settings={'url': URL, 'token': 'abcdefghij'},\n"
        "    good_content={'text': 'hi'},\n"
        "    render_request=lambda c: simple_request('toy', c, c['text']))\n"
        "def test_it(conformance_check):\n"
        "    run_check(conformance_check)\n"
        "def test_all(channel_conformance):\n"
        "    channel_conformance(conformance_case)\n"
    )
    tests_folder = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mod.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tests_folder)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed, 2 skipped" in result.stdout
