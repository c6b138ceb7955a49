"""Two tenants on one database, the first one broken: the fault-isolation proof's world.

``alpha`` has one approved partner whose dispatch fails (a :class:`Breakage`); ``beta``
has all six partners approved and must get all of its mail whatever alpha's dispatch does.

The breakages are parameters (``BREAKAGES``): a template body appended to alpha's email
header partial (so every touch and locale renders it), or a plugin with a bug. Runaway
templates (one that exhausts memory, one that loops) are added here as template bodies:
every test built on this module then runs them too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.models import CampaignVersion
from partnercast.campaigns.store import get_campaign
from partnercast.concierge.models import ConciergeTask
from partnercast.core.models import Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins import DispatchInfo, Draft, hookimpl
from partnercast.plugins.manager import Plugins, default_plugins, load_plugins
from partnercast.tenants.models import Contact, Partner
from support.world import World, build_world, respond

PARTNERS = ("P001", "P002", "P003", "P004", "P005", "P006")
BROKEN_PARTIAL = "email/_header.mjml"  # included by every email template, every locale


class BuggyPlugin:
    """A third-party plugin with a bug that only alpha's dispatches reach: its veto hook
    returns a number instead of a list of reasons. Nothing classifies the error this
    raises in the engine: it is the "anything unexpected" case."""

    def __init__(self, tenant_slug: str = "alpha") -> None:
        self.tenant_slug = tenant_slug
        self.tenant_id = 0  # set once the tenant exists

    @hookimpl
    def before_publish(self, dispatch: DispatchInfo, draft: Draft) -> Any:
        return 42 if dispatch.tenant_id == self.tenant_id else None


@dataclass(frozen=True)
class Breakage:
    """What breaks alpha's dispatch: a template body, or a plugin with a bug."""

    template: str = ""
    plugin: bool = False


BREAKAGES = [
    pytest.param(Breakage(template="{{ 1/0 }}"), id="template-raises"),
    pytest.param(Breakage(template="{{ range(10**10)|list }}"), id="template-huge-range"),
    pytest.param(Breakage(plugin=True), id="plugin-bug"),
    # Runaway templates, stopped by the render process's limits (campaigns/render_pool.py):
    # past the sandbox's size checks, the join needs 400 MB (RLIMIT_AS: out of memory);
    # the loop stays under the iteration budget but runs out of CPU time. Both retryable.
    pytest.param(
        Breakage(template="{% set s = 'x' * 1999999 %}{{ ([s] * 200)|map('upper')|join }}"),
        id="template-exhausts-memory",
    ),
    pytest.param(
        Breakage(
            template="{% for i in range(1000) %}{% for j in range(190) %}"
            "{{ ('ab ' * 3000)|wordcount }}{% endfor %}{% endfor %}"
        ),
        id="template-loops",
    ),
]


@dataclass
class TwoTenants:
    engine: Engine
    alpha: World
    beta: World
    plugins: Plugins

    def alpha_dispatch(self) -> Dispatch:
        """Alpha's one due dispatch (the first touch of its one approved partner)."""
        with tenant_session(self.engine, self.alpha.tenant_id) as session:
            rows = session.exec(
                select(Dispatch).where(col(Dispatch.attempts) > 0).order_by(col(Dispatch.id))
            ).all()
            assert len(rows) == 1, [(row.id, row.state, row.last_error) for row in rows]
            return rows[0]

    def alpha_dispatch_state(self) -> str | None:
        """The state of alpha's dispatch once tried (None before its first attempt)."""
        with tenant_session(self.engine, self.alpha.tenant_id) as session:
            states = session.exec(select(Dispatch.state).where(col(Dispatch.attempts) > 0)).all()
            return states[0] if states else None

    def beta_states(self) -> Counter[str]:
        with tenant_session(self.engine, self.beta.tenant_id) as session:
            rows = session.exec(select(Dispatch.state, Dispatch.scheduled_at)).all()
            return Counter(state for state, _at in rows)

    def beta_sent(self) -> int:
        with tenant_session(self.engine, self.beta.tenant_id) as session:
            total = session.exec(select(func.sum(Dispatch.sent_count))).one()
            return int(total or 0)

    def beta_audience(self) -> int:
        """Beta's consenting contacts: every one of them must get the first touch."""
        with tenant_session(self.engine, self.beta.tenant_id) as session:
            return int(
                session.exec(
                    select(func.count())
                    .select_from(Contact)
                    .join(Partner, col(Partner.id) == Contact.partner_id)
                    .where(col(Contact.consent) == True)  # noqa: E712
                    .where(col(Partner.external_id).in_(PARTNERS))
                ).one()
            )

    def dispatch_ids(self, world: World) -> set[int]:
        with tenant_session(self.engine, world.tenant_id) as session:
            return {int(i) for i in session.exec(select(Dispatch.id)).all() if i}

    def tasks(self, world: World, kind: str = "dispatch_failed") -> list[ConciergeTask]:
        with tenant_session(self.engine, world.tenant_id) as session:
            return list(session.exec(select(ConciergeTask).where(ConciergeTask.kind == kind)))


def received_by_dispatch(sink: SmtpSink) -> Counter[int]:
    """Messages the sink got, per dispatch (the Message-ID names it: <pc.D.C.hash@...>)."""
    counts: Counter[int] = Counter()
    for message in sink.received.messages:
        counts[int(str(message["Message-ID"]).split(".")[1])] += 1
    return counts


def two_tenants(
    engine: Engine, folder: Path, sink: SmtpSink, breakage: Breakage, *, starts_at: datetime
) -> TwoTenants:
    """Alpha (one approved partner, broken) and beta (six approved), cycles started."""
    alpha = build_world(engine, folder / "alpha", sink.port, slug="alpha")
    beta = build_world(engine, folder / "beta", sink.port, slug="beta")
    respond(alpha, {"P001": "approve"})
    respond(beta, dict.fromkeys(PARTNERS, "approve"))
    if breakage.template:
        _break_templates(alpha, {BROKEN_PARTIAL: breakage.template})
    plugins = default_plugins()
    if breakage.plugin:
        buggy = BuggyPlugin()
        buggy.tenant_id = alpha.tenant_id
        plugins = load_plugins(extra=[buggy])
    for world in (alpha, beta):
        with tenant_session(engine, world.tenant_id) as session:
            start_cycle(session, get_campaign(session, "cloud-security"), starts_at, now=starts_at)
    return TwoTenants(engine, alpha, beta, plugins)


def _break_templates(world: World, appended: Mapping[str, str]) -> None:
    """Append to templates of the stored version, as if they had passed validation: the
    failure is met at send time, which is what the engine must survive."""
    with tenant_session(world.engine, world.tenant_id) as session:
        for version in session.exec(select(CampaignVersion)).all():
            templates = dict(version.templates)
            for name, body in appended.items():
                templates[name] = templates[name] + body
            version.templates = templates
            session.add(version)
