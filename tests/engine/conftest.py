"""Engine test fixtures: a real SMTP server and a small but complete world."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.world import World, build_world

from partnercast.smtp_sink import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def world(engine: Engine, tmp_path: Path, sink: SmtpSink) -> World:
    return build_world(engine, tmp_path / "world", sink.port)
