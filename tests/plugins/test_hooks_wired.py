"""The lifecycle hooks reach plugins: template filters, before/after publish, on_event."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from support.world import World, respond, run_days, start

from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins import DispatchInfo, Draft, EventInfo, PublishResult, hookimpl
from partnercast.plugins.manager import load_plugins


class Recorder:
    """A throwaway plugin that records what the engine tells it."""

    def __init__(self, *, veto: bool = False) -> None:
        self.events: list[str] = []
        self.published: list[tuple[int, int]] = []
        self.drafts: list[str] = []
        self.seen: list[object] = []
        self.veto = veto

    @hookimpl
    def template_filters(self) -> Mapping[str, Callable[..., object]]:
        return {"shout": lambda value: str(value).upper()}

    @hookimpl
    def before_publish(self, dispatch: DispatchInfo, draft: Draft) -> list[str] | None:
        self.drafts.append(draft.touch_key)
        self.seen.append(dispatch)
        return ["the compliance plugin says no"] if self.veto else None

    @hookimpl
    def after_publish(self, dispatch: DispatchInfo, result: PublishResult) -> None:
        self.published.append((dispatch.id, dispatch.sent_count))
        self.seen.append(dispatch)

    @hookimpl
    def on_event(self, event: EventInfo) -> None:
        self.events.append(event.kind)
        self.seen.append(event)


def _tick_all(world: World, recorder: Recorder) -> None:
    plugins = load_plugins(extra=[recorder])
    from datetime import timedelta

    from support.world import START

    for day in range(0, 47):
        tick(
            world.engine,
            world.settings,
            START + timedelta(days=day, hours=1),
            plugins=plugins,
            after=[scan_after_tick],
        )


def test_hooks_hear_a_whole_cycle(world: World, sink: SmtpSink) -> None:
    recorder = Recorder()
    respond(world, {"P001": "approve"})
    start(world)
    _tick_all(world, recorder)
    assert set(recorder.drafts) == {"intro", "follow-up", "last-call"}
    assert len(recorder.published) == 3 and all(sent > 0 for _, sent in recorder.published)
    assert recorder.events.count("dispatch.done") == 3
    assert sink.received.count > 0
    # Plugins see frozen snapshots of the engine's types, never its database rows.
    assert {type(seen) for seen in recorder.seen} == {DispatchInfo, EventInfo}
    done = [s for s in recorder.seen if isinstance(s, DispatchInfo) and s.state == "done"]
    assert len(done) == 3 and all(d.channel == "email" and d.tenant_id for d in done)


def test_a_crashing_veto_plugin_stops_the_dispatch(world: World, sink: SmtpSink) -> None:
    class Crashing(Recorder):
        @hookimpl
        def before_publish(self, dispatch: DispatchInfo, draft: Draft) -> list[str] | None:
            raise RuntimeError("compliance service down")

    respond(world, {"P001": "approve"})
    start(world)
    _tick_all(world, Crashing())
    assert sink.received.count == 0


def test_a_veto_stops_the_dispatch_and_nothing_is_sent(world: World, sink: SmtpSink) -> None:
    recorder = Recorder(veto=True)
    respond(world, {"P001": "approve"})
    start(world)
    _tick_all(world, recorder)
    assert sink.received.count == 0
    assert recorder.published == []
    assert recorder.events.count("dispatch.failed") == 3


def test_plugin_filters_are_available_to_templates(world: World) -> None:
    from support.world import CAMPAIGN  # noqa: F401 - the world loaded it

    from partnercast.campaigns.sandbox import render_limited, template_environment

    filters = load_plugins(extra=[Recorder()]).template_filters()
    environment = template_environment({"t.txt": "{{ 'hi'|shout }}"}, filters=filters)
    assert render_limited(environment, "t.txt", {}) == "HI"


def test_run_days_helper_still_works(world: World, sink: SmtpSink) -> None:
    respond(world, {"P001": "approve"})
    start(world)
    assert run_days(world, 0, 1) > 0
