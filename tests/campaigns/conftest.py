"""Fixtures for the campaign-as-code tests: a writable copy of the example, segments."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from partnercast.campaigns.loader import LoadedCampaign, read_campaign
from partnercast.core.errors import Problems
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.plugins.manager import installed_channels
from partnercast.tenants.models import Segment

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "campaigns" / "cloud-security"
SUFFIXES = installed_channels()  # the installed channels (suffixes and rules), as the CLI
EXAMPLE_SEGMENTS = ("gold-emea", "silver-na", "registered-apac")


class CampaignFolder:
    """A copy of the example campaign that a test may break on purpose."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self, relative: str) -> str:
        return (self.path / relative).read_text(encoding="utf-8")

    def edit(self, relative: str, old: str, new: str, *, nth: int = 1) -> None:
        """Replace the ``nth`` occurrence of ``old`` (which must exist) with ``new``."""
        text = self.text(relative)
        start = -1
        for _ in range(nth):
            start = text.find(old, start + 1)
            if start < 0:
                raise LookupError(f"{old!r} (occurrence {nth}) is not in {relative}")
        text = text[:start] + new + text[start + len(old) :]
        (self.path / relative).write_text(text, encoding="utf-8")

    def delete(self, relative: str) -> None:
        (self.path / relative).unlink()

    def line(self, relative: str, needle: str, *, nth: int = 1) -> int:
        """The 1-based line of the ``nth`` line of a file that contains ``needle``."""
        hits = [n for n, line in enumerate(self.text(relative).splitlines(), 1) if needle in line]
        if len(hits) < nth:
            raise LookupError(f"{needle!r} (occurrence {nth}) is not in {relative}")
        return hits[nth - 1]

    def read(self) -> LoadedCampaign:
        return read_campaign(self.path, SUFFIXES)

    def problems(self) -> list[str]:
        with pytest.raises(Problems) as raised:
            self.read()
        return raised.value.problems


@pytest.fixture
def example() -> Path:
    return EXAMPLE


@pytest.fixture
def folder(tmp_path: Path) -> CampaignFolder:
    """A fresh copy of the example campaign in a temporary folder."""
    return CampaignFolder(Path(shutil.copytree(EXAMPLE, tmp_path / "cloud-security")))


@pytest.fixture
def add_segments(engine: Engine) -> Callable[..., None]:
    """Define segments (by key) for a tenant, as the tenants side would."""

    def add(tenant_id: int, keys: Iterable[str] = EXAMPLE_SEGMENTS) -> None:
        with tenant_session(engine, tenant_id) as session:
            for key in keys:
                session.add(
                    Segment(
                        key=key, name=key, rule={"field": "tier", "eq": "gold"}, created_at=utcnow()
                    )
                )

    return add
