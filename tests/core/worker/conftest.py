"""Fixtures for the worker tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.world import World, build_world, start


@pytest.fixture
def bulk_world(any_engine: Engine, tmp_path: Path) -> World:
    """The test world (no SMTP server: nothing is sent) on SQLite or PostgreSQL, started."""
    world = build_world(any_engine, tmp_path / "world", 9)
    start(world)
    return world
