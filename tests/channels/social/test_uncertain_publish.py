"""A post is never repeated: an uncertain publish is resolved by asking the network.

The engine runs the digital sample campaign (X, LinkedIn, search) against the stand-ins.
A crash is injected between the network's answer and the commit of the post's id (the
process dies: a BaseException out of the tick, its lease left to expire), or the answer
is lost on the wire; afterwards each post exists exactly once at the stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.world import START, World, build_world

from partnercast.campaigns import dispatching
from partnercast.campaigns.ticking import tick
from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.models import Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.demo import digital as demo_digital
from partnercast.demo.search_standin import GoogleAdsStandIn
from partnercast.demo.social_standin import LINKEDIN_POSTS, X_POSTS, SocialStandIn

POSTS_DAY = START + timedelta(days=2, hours=1)  # posts and ads are all due
LATER = timedelta(minutes=30)  # past the lease (5 min) and any first retry (<= 5 min)


class Crash(BaseException):
    """The worker process dies here (not an Exception: nothing in the engine catches it)."""


@dataclass
class Digital:
    world: World
    social: SocialStandIn
    ads: GoogleAdsStandIn

    def dispatches(self, channel: str) -> list[Dispatch]:
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            return list(session.exec(select(Dispatch).where(Dispatch.channel == channel)).all())

    def tick(self, at) -> None:  # type: ignore[no-untyped-def]
        tick(self.world.engine, self.world.settings, at, after=[scan_after_tick])


@pytest.fixture
def digital(any_engine: Engine, tmp_path: Path) -> Iterator[Digital]:
    world = build_world(any_engine, tmp_path / "world", 9)
    with SocialStandIn() as social, GoogleAdsStandIn() as ads:
        demo_digital.set_up(world.engine, world.settings, world.tenant_id, social, ads, {}, START)
        yield Digital(world, social, ads)


def crash_once_after(monkeypatch: pytest.MonkeyPatch, channel: str) -> list[int]:
    """Make the first commit of a ``channel`` post's ids die; returns the dispatch crashed."""
    original = dispatching._record_external_ids
    crashed: list[int] = []

    def record(ctx, tenant_id, dispatch_id, external_ids, **kwargs):  # type: ignore[no-untyped-def]
        with tenant_session(ctx.engine, tenant_id) as session:
            mine = session.get(Dispatch, dispatch_id).channel == channel
        if mine and external_ids and not crashed:
            crashed.append(dispatch_id)
            raise Crash(f"killed after {channel} answered {external_ids}")
        return original(ctx, tenant_id, dispatch_id, external_ids, **kwargs)

    monkeypatch.setattr(dispatching, "_record_external_ids", record)
    return crashed


def test_a_crash_after_the_post_never_makes_a_second_post(
    digital: Digital, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = crash_once_after(monkeypatch, "x")
    with pytest.raises(Crash):
        digital.tick(POSTS_DAY)
    [dispatch_id] = crashed
    [made] = digital.social.x_posts()  # the network holds the post; we hold no id
    [dispatch] = [d for d in digital.dispatches("x") if d.id == dispatch_id]
    assert dispatch.state == "running" and dispatch.external_ids == []
    assert dispatch.publish_started_at is not None

    digital.tick(POSTS_DAY + LATER)  # another run takes the expired lease over

    [dispatch] = [d for d in digital.dispatches("x") if d.id == dispatch_id]
    assert dispatch.state == "done", dispatch.last_error
    assert dispatch.external_ids == [made.id]
    assert dispatch.last_error.startswith("found on the network")
    done = [d for d in digital.dispatches("x") if d.state == "done"]
    posts = digital.social.x_posts()
    assert len(posts) == len(done) >= 2
    assert len({(p.author, p.text) for p in posts}) == len(posts)  # none twice
    assert sorted(p.id for p in posts) == sorted(d.external_ids[0] for d in done)
    lookups = [
        r for r in digital.social.requests if r.path.endswith("/tweets") and "users" in r.path
    ]
    assert len(lookups) == 1  # only the uncertain dispatch asked


def test_a_crash_after_the_ads_mutate_finds_the_campaign(
    digital: Digital, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = crash_once_after(monkeypatch, "search")
    with pytest.raises(Crash):
        digital.tick(POSTS_DAY)  # the ads go out on the posts' day too
    assert len(digital.ads.campaigns) == 1
    digital.tick(POSTS_DAY + LATER)
    [dispatch] = [d for d in digital.dispatches("search") if d.id == crashed[0]]
    assert dispatch.state == "done", dispatch.last_error
    done = [d for d in digital.dispatches("search") if d.state == "done"]
    assert len(digital.ads.campaigns) == len(done)
    created = {ids["campaigns"] for ids in digital.ads.campaigns.values()}
    assert created == {d.external_ids[0] for d in done}


def test_a_lost_answer_is_retried_by_asking_first(digital: Digital) -> None:
    digital.social.drop_after_post(X_POSTS)
    digital.tick(POSTS_DAY)
    retrying = [d for d in digital.dispatches("x") if d.state == "pending"]
    [uncertain] = [d for d in retrying if d.publish_started_at is not None]
    assert uncertain.last_error.startswith("retrying:")
    assert (
        len(digital.social.x_posts())
        == len([d for d in digital.dispatches("x") if d.state == "done"]) + 1
    )

    digital.tick(POSTS_DAY + LATER)

    done = [d for d in digital.dispatches("x") if d.state == "done"]
    assert uncertain.id in {d.id for d in done}
    assert len(digital.social.x_posts()) == len(done)


def test_a_lookup_that_cannot_tell_fails_as_uncertain_and_tells_the_concierge(
    digital: Digital,
) -> None:
    digital.social.drop_after_post(LINKEDIN_POSTS)
    digital.tick(POSTS_DAY)
    posts_before = digital.social.linkedin_posts()
    # the finder needs r_organization_social; this app lacks it
    digital.social.fail_next(LINKEDIN_POSTS, 403, message="Not enough permissions")
    digital.tick(POSTS_DAY + LATER)

    [failed] = [
        d for d in digital.dispatches("linkedin") if d.publish_started_at and d.state == "failed"
    ]
    assert failed.last_error.startswith("uncertain: check the partner's feed")
    assert "403" in failed.last_error
    assert digital.social.linkedin_posts() == posts_before  # not posted blindly
    with tenant_session(digital.world.engine, digital.world.tenant_id) as session:
        tasks = session.exec(
            select(ConciergeTask).where(ConciergeTask.cause_key == f"dispatch_failed:d{failed.id}")
        ).all()
    [task] = tasks
    assert "uncertain: check the partner's feed" in f"{task.title} {task.notes}"
