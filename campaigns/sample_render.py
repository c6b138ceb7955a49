"""Rendering a campaign for a sample partner before launch, so that what breaks only when
rendered (a division by zero, a filter on the wrong type, MJML that does not compile) is
refused by ``campaign validate`` and ``load``, with its file and line, instead of failing
the dispatch at send time.

Every touch is rendered in every locale for each variant (the campaign's own defaults,
then each segment's overrides), for a sample partner whose brand is complete; contact
values are merge markers, as in a real send. Each rendered template is then shown to its
channel (``Channel.check_rendered``: email compiles the MJML), and the whole touch is
rendered through the channel as a dispatch would be (subject, preheader, content).

Where a problem is (file and line) is found by :mod:`partnercast.campaigns.template_origin`:
a render error's template frames, or, for a channel's finding, its offset in the rendered
text mapped back to the template line that wrote it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaError

from partnercast.campaigns.rendering import (
    MARKUP_SUFFIXES,
    Environments,
    PartnerView,
    layered_context,
    render_touch,
)
from partnercast.campaigns.sandbox import BudgetedSandbox
from partnercast.campaigns.spec import CampaignSpec, TouchSpec
from partnercast.campaigns.template_origin import (
    NamedLoader,
    chunk_origins,
    from_a_template,
    locate,
    origin,
    render_here,
)
from partnercast.core.errors import TemplateError, UserError
from partnercast.plugins import Channel, ChannelError
from partnercast.plugins.personalization import new_nonce
from partnercast.tenants.models import Partner, Tenant

TEMPLATES_DIR = "templates"
SPEC_FILE = "campaign.yaml"
SLOW_RENDER_SECONDS = 0.2
"""CPU seconds. A touch whose template takes longer to render (a campaign email takes
milliseconds) is a warning, and is not rendered again for its other locales and variants,
so that validate stays quick: each render may take up to the render budget. CPU time of
this thread: neither a busy machine nor the render process starting counts."""
SAMPLE_CREATED = datetime(2026, 1, 1, tzinfo=UTC)
"""A fixed date for the sample rows (never stored; no template shows it)."""
SAMPLE_TENANT = Tenant(
    name="Sample Vendor", slug="sample-vendor", brand={}, created_at=SAMPLE_CREATED
)
SAMPLE_PARTNER = Partner(
    external_id="sample-partner",
    name="Sample Partner",
    tier="gold",
    region="EMEA",
    languages=[],
    legal_name="Sample Partner GmbH",
    postal_address="Beispielstraße 1, 10115 Berlin, Germany",
    logo_url="https://partner.example/logo.png",
    primary_color="#0b5cab",
    secondary_color="#f4f6f8",
    signature="The Sample Partner team",
    sender_name="Sample Partner",
    sender_email="news@partner.example",
    contact_name="Sam Sample",
    contact_email="sam@partner.example",
    created_at=SAMPLE_CREATED,
    updated_at=SAMPLE_CREATED,
)
"""A partner whose every brand field is set: what every template may show."""


@dataclass(frozen=True)
class Finding:
    """One problem found by rendering: ``file`` relative to the campaign folder."""

    file: str
    line: int | None
    message: str
    warning: bool = False


@dataclass
class _Run:
    spec: CampaignSpec
    templates: Mapping[str, str]
    channels: Mapping[str, type[Channel]]
    suffixes: Mapping[str, str]
    filters: Mapping[str, Callable[..., Any]] | None
    touch_line: Callable[[int], int | None]
    found: dict[tuple[str, int | None, str, bool], str] = field(default_factory=dict)
    environments: dict[bool, BudgetedSandbox] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)
    """Touches whose render went over its limits: not rendered again."""
    shared: Environments = field(default_factory=Environments)
    """The touch renders' compiled templates: parsed once, not once per render."""


def sample_render(
    spec: CampaignSpec,
    templates: Mapping[str, str],
    channels: Mapping[str, type[Channel]],
    suffixes: Mapping[str, str],
    *,
    touch_line: Callable[[int], int | None],
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> list[Finding]:
    """Problems found by rendering every touch, locale and variant for the sample partner.

    ``channels`` are the channel classes whose own checks and render apply; a channel
    known by its ``suffixes`` only has its templates rendered. ``touch_line(index)`` is
    the line of ``touches[index]`` in campaign.yaml, where a touch's own problems go.
    A problem is reported once, for the first variant it shows in.
    """
    run = _Run(spec, templates, channels, suffixes, filters, touch_line)
    for segment in _variant_segments(spec):
        view = PartnerView(SAMPLE_TENANT, SAMPLE_PARTNER, spec, templates, segment, {})
        for index, touch in enumerate(spec.touches):
            for locale in spec.locales:
                _render_one(run, view, index, touch, locale)
    return [
        Finding(file, line, message + suffix, warning)
        for (file, line, message, warning), suffix in run.found.items()
    ]


def touch_problems(
    view: PartnerView,
    touch: TouchSpec,
    locale: str,
    channel: type[Channel],
    *,
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> list[Finding]:
    """Where one touch's render for one partner fails, as campaign files and lines.

    For ``preview`` when a render fails: the same checks as before launch, for the
    partner being previewed. A touch's own problems are put at ``campaign.yaml``.
    """
    run = _Run(
        view.spec,
        view.templates,
        {touch.channel: channel},
        {touch.channel: channel.template_suffix},
        filters,
        lambda index: None,
    )
    _render_one(run, view, view.spec.touches.index(touch), touch, locale)
    return [Finding(file, line, message, warning) for (file, line, message, warning) in run.found]


def _variant_segments(spec: CampaignSpec) -> list[str]:
    """One segment per distinct variant: a segment without overrides, then each variant."""
    plain = [segment for segment in spec.segments if segment not in spec.variants]
    return plain[:1] + [segment for segment in spec.segments if segment in spec.variants]


def _render_one(run: _Run, view: PartnerView, index: int, touch: TouchSpec, locale: str) -> None:
    """Render one touch: through its channel as a dispatch does (in the engine's render
    limits), then its template here, to show it to the channel and to locate failures.

    The render here runs only after the channel's render went through, or failed for a
    reason other than the render limits: a template that exhausts them is reported as
    it is, never run again outside them.
    """
    suffix = run.suffixes.get(touch.channel)
    path = touch.template_file(locale, suffix) if suffix else None
    if suffix is None or path is None or path not in run.templates:
        return  # an unknown channel or a missing template is reported by the loader
    where = f" (variant {view.segment_key})" if view.segment_key in view.spec.variants else ""
    if touch.key in run.stopped:
        return  # over the render limits once: said once, not waited for again
    channel = run.channels.get(touch.channel)
    failure = _render_touch(run, view, touch, locale, channel) if channel else None
    if failure is not None and _out_of_time(failure):  # a busy machine, or every time?
        failure = _render_touch(run, view, touch, locale, channel) if channel else None
    if failure is not None and _over_the_limits(failure):
        run.stopped.add(touch.key)
        _add(run, f"{TEMPLATES_DIR}/{path}", None, _describe(failure), where)
        return
    markup = suffix.lower() in MARKUP_SUFFIXES
    environment = _environment(run, markup)
    context = layered_context(view, touch, locale, new_nonce(), html=markup)
    try:
        environment.get_template(path)  # compiled before the render is timed
        started = time.thread_time()
        try:
            rendered = render_here(environment, path, context)
        except Exception as error:
            if not _out_of_time(error):
                raise
            rendered = render_here(environment, path, context)
    except Exception as error:  # any failure of a template is the template's problem
        if _out_of_time(error):
            run.stopped.add(touch.key)
        file, line = origin(error, run.templates) or (path, None)
        _add(run, f"{TEMPLATES_DIR}/{file}", line, _describe(error), where)
        return
    took = time.thread_time() - started
    if took > SLOW_RENDER_SECONDS:
        # Every partner's send pays this: say so, and spare validate the other variants.
        run.stopped.add(touch.key)
        message = (
            f"renders slowly ({took:.1f} s of CPU time for one partner); "
            "not rendered for its other locales and variants"
        )
        _add(run, f"{TEMPLATES_DIR}/{path}", None, message, where, warning=True)
    findings = channel.check_rendered(rendered) if channel else []
    located = [finding for finding in findings if finding.offset is not None]
    origins = chunk_origins(environment, path, context, run.templates) if located else []
    for finding in findings:
        file, line = path, None
        if finding.offset is not None:
            file, line = locate(finding.offset, origins, run.templates) or (path, None)
        _add(run, f"{TEMPLATES_DIR}/{file}", line, finding.message, where, finding.warning)
    if failure is not None and not any(not finding.warning for finding in findings):
        # Not the template itself: the touch's subject, preheader or content.
        message = str(failure) if isinstance(failure, ChannelError) else _describe(failure)
        line = run.touch_line(index)
        _add(run, SPEC_FILE, line, f"touch {touch.key!r}: {message}", where)


def _render_touch(
    run: _Run, view: PartnerView, touch: TouchSpec, locale: str, channel: type[Channel]
) -> Exception | None:
    """The whole touch through its channel, as a dispatch renders it; what went wrong."""
    try:
        render_touch(channel(None), view, touch, locale, run.filters, environments=run.shared)
    except Exception as error:
        if not isinstance(error, UserError | ChannelError) and not from_a_template(error):
            raise  # the engine's own failure is a bug, not the campaign's problem
        return error
    return None


def _out_of_time(error: Exception) -> bool:
    """Stopped by the render's time budget: on a busy machine, worth one more try."""
    text = str(error)
    budget = isinstance(error, SecurityError) or _over_the_limits(error)
    return budget and "took" in text and "second" in text


def _over_the_limits(error: Exception) -> bool:
    """A render stopped by its budget (time, loops, size, memory): the sandbox says
    ``stopped: ...``."""
    return isinstance(error, TemplateError) and error.message.startswith("stopped")


def _add(
    run: _Run, file: str, line: int | None, message: str, where: str, warning: bool = False
) -> None:
    run.found.setdefault((file, line, message, warning), where)


def _describe(error: BaseException) -> str:
    if isinstance(error, UserError):
        return f"when rendered: {error.message}"
    if isinstance(error, SecurityError):
        return f"when rendered, stopped: {error}"
    if isinstance(error, JinjaError):
        return f"when rendered: {error}"
    return f"when rendered: {error or type(error).__name__} ({type(error).__name__})"


def _environment(run: _Run, markup: bool) -> BudgetedSandbox:
    """The engine's sandbox (its budget and guards) over the campaign's templates."""
    if markup not in run.environments:
        environment = BudgetedSandbox(NamedLoader(run.templates), autoescape=markup)
        for name, function in (run.filters or {}).items():
            environment.filters.setdefault(name, function)  # built-ins win, as when sending
        run.environments[markup] = environment
    return run.environments[markup]
