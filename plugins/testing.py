"""The channel conformance kit: table-driven checks that any channel's own test suite runs.

A channel author describes the channel once, in a :class:`ChannelCase`, and gets one
pytest test per check (render, validate, account settings, secrets, every failure the
network can produce, idempotency, the lookup of a post an earlier attempt made), each
with its own id, so that one failure never hides the others::

    from partnercast.plugins.testing import ChannelCase, ChannelConformance, HttpTransport

    class TestWebhookChannel(ChannelConformance):
        case = ChannelCase(
            channel=WebhookChannel,
            good_settings={"url": "https://hooks.example/in", "secret": "s3cret-value-1"},
            bad_settings={"no-url": {"secret": "s3cret-value-1"}},
            good_content={"title": "Hello"},
            bad_content={"empty-title": {"title": ""}},
            render_request=lambda content: simple_request("webhook", content, "Hi {{ x }}"),
            transport=HttpTransport(
                "POST", "https://hooks.example/in", dedupe_header="Idempotency-Key"
            ),
        )

Outside a test class, :func:`checks` gives the rows and :func:`run_conformance` runs them
all and returns the failures. The pytest plugin (``partnercast.plugins.pytest_plugin``,
registered under ``pytest11``) also parametrizes any test that asks for the
``conformance_check`` fixture from a module-level ``conformance_case``.

HTTP channels that use ``requests`` are tested with :class:`HttpTransport` (the
``responses`` library intercepts the calls: nothing leaves the machine). Other transports
(SMTP, a vendor SDK) implement :class:`Transport` themselves.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, SecretStr, ValidationError

from partnercast.plugins.channel import (
    AuthError,
    Channel,
    ChannelError,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    RenderRequest,
    TransientError,
)
from partnercast.plugins.personalization import MERGE_FIELDS, marker
from partnercast.plugins.settings import PluginConfig
from partnercast.plugins.testing_failures import HTTP_FAILURES, Failure

if TYPE_CHECKING:
    from partnercast.plugins.testing_http import HttpTransport

_ERRORS: dict[str, type[ChannelError]] = {
    "permanent": PermanentError,
    "transient": TransientError,
    "auth": AuthError,
}
# Per-recipient outcome statuses that stand for each expectation on audience channels.
_OUTCOMES: dict[str, set[str]] = {
    "permanent": {"hard_bounce", "failed"},
    "transient": {"transient"},
    "auth": set(),  # a refused login is never a per-recipient outcome
}
MIN_SECRET_LENGTH = 8
SECRET_NAMES = re.compile(r"password|secret|token|api_?key|credential|private", re.I)


KIT_NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
"""The instant the kit's channels run at: their clock (a test is an edge, it picks it)."""


def kit_config() -> PluginConfig:
    """What the kit builds a channel with by default: no settings sections, its clock."""
    return PluginConfig(clock=lambda: KIT_NOW)


class ConformanceError(AssertionError):
    """A channel broke the contract; the message says which part and how."""


# --- what the author supplies -----------------------------------------------------------


class Network(Protocol):
    """The fake network during a publish: how many external posts it holds."""

    @property
    def posts(self) -> int: ...


class Transport(Protocol):
    """How the kit makes the channel's network succeed or fail.

    ``account_overrides()`` returns account settings that point the channel at the fake
    (a local port, a base URL); they are merged over ``ChannelCase.good_settings``.
    """

    failures: Sequence[Failure]

    def account_overrides(self) -> Mapping[str, Any]: ...

    def succeeding(self) -> contextlib.AbstractContextManager[Network]: ...

    def failing(self, failure: Failure) -> contextlib.AbstractContextManager[None]: ...


def sample_recipients() -> list[Recipient]:
    """One recipient with every merge field, for audience channels."""
    values = {name: f"kit-{name}" for name in MERGE_FIELDS}
    values.update(email="ann@kit.example", unsubscribe_url="https://kit.example/u/t1")
    return [Recipient(1, 1, "ann@kit.example", "<pc.1.kit@kit.example>", values)]


def simple_request(
    channel: str,
    content: Mapping[str, Any],
    template_source: str,
    *,
    template: str = "touch",
    locale: str = "en",
    nonce: str = "c0ffee",
    identity: Mapping[str, str] | None = None,
) -> RenderRequest:
    """A RenderRequest whose template renders to ``template_source`` as it is.

    No Jinja runs: write the source as the engine would have rendered it, with merge
    markers from :func:`partnercast.plugins.personalization.marker` where a contact
    value goes.
    """
    return RenderRequest(
        channel=channel,
        touch_key="kit-touch",
        template=template,
        locale=locale,
        content=dict(content),
        nonce=nonce,
        render_template=lambda _name: template_source,
        render_string=lambda source, html=False: source,
        identity=dict(identity or {}),
        render_vendor_template=lambda _name: template_source,
        render_vendor_string=lambda source, html=False: source,
    )


@dataclass
class ChannelCase:
    """Everything the kit needs to know about one channel.

    ``bad_settings`` and ``bad_content`` map a row id to a value that must be refused:
    settings by the Account model at construction; content by the Content model, by
    ``render`` (PermanentError) or by ``validate`` (a non-empty list). ``transport`` is
    None for a channel that never touches a network (its publish rows are skipped).
    """

    channel: type[Channel]
    good_settings: Mapping[str, Any]
    good_content: Mapping[str, Any]
    render_request: Callable[[Mapping[str, Any]], RenderRequest]
    bad_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    bad_content: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    transport: Transport | None = None
    recipients: Callable[[], Sequence[Recipient]] = sample_recipients
    make_channel: Callable[[type[Channel]], Channel] = lambda cls: cls(kit_config())

    def account_settings(self) -> dict[str, Any]:
        overrides = self.transport.account_overrides() if self.transport else {}
        return {**self.good_settings, **overrides}

    def account(self) -> BaseModel:
        return self.channel.Account(**self.account_settings())

    def secrets(self) -> list[str]:
        """The plain values of the account's secret fields (what must never leak).

        Fields typed SecretStr, and fields whose name says secret (password, token, ...)
        even when the author forgot to type them so.
        """
        account = self.account()
        values = []
        for name in type(account).model_fields:
            value = getattr(account, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
            elif isinstance(value, str) and value and SECRET_NAMES.search(name):
                values.append(value)
        return values

    def draft(self, channel: Channel | None = None) -> Draft:
        channel = channel or self.make_channel(self.channel)
        content = self.channel.Content.model_validate(dict(self.good_content)).model_dump()
        return channel.render(self.render_request(content))

    def publish(self, channel: Channel, key: str = "kit-key-1") -> PublishResult:
        draft = self.draft(channel)
        recipients = self.recipients() if self.channel.audience else ()
        return channel.publish(draft, self.account(), idempotency_key=key, recipients=recipients)


# --- the checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One row of the kit: an id (``group/name``) and the function that checks it.

    ``skip`` is a reason when the row does not apply to this channel.
    """

    id: str
    run: Callable[[], None]
    skip: str = ""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def checks(case: ChannelCase) -> list[Check]:
    """Every row of the kit for ``case``, in a stable order."""
    rows = [
        Check("contract/class-attributes", lambda: _class_attributes(case)),
        Check("render/returns-draft", lambda: _render_returns_draft(case)),
        Check("validate/good-content-is-clean", lambda: _validate_good(case)),
        Check("account/good-settings-accepted", lambda: _good_settings(case)),
    ]
    rows += [
        Check(f"validate/flags-{row_id}", _bound(_content_flagged, case, content))
        for row_id, content in case.bad_content.items()
    ]
    rows += [
        Check(f"account/refuses-{row_id}", _bound(_settings_refused, case, settings))
        for row_id, settings in case.bad_settings.items()
    ]
    rows += _secret_rows(case)
    rows += _publish_rows(case)
    return rows


def _bound(function: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: function(*args)


def run_conformance(case: ChannelCase) -> dict[str, str]:
    """Run every applicable row; returns ``{row id: failure message}`` (empty when all pass)."""
    failures: dict[str, str] = {}
    for check in checks(case):
        if check.skip:
            continue
        try:
            check.run()
        except Exception as error:  # every row runs, whatever the previous one did
            failures[check.id] = f"{type(error).__name__}: {error}"
    return failures


def _class_attributes(case: ChannelCase) -> None:
    cls = case.channel
    for attribute in ("name", "title", "Account", "Content"):
        _expect(hasattr(cls, attribute), f"{cls.__name__} has no {attribute!r}")
    _expect(
        isinstance(cls.name, str) and re.fullmatch(r"[a-z][a-z0-9_-]*", cls.name) is not None,
        f"channel name {cls.name!r} must be lower-case letters, digits, '-' or '_'",
    )
    _expect(issubclass(cls.Account, BaseModel), "Account must be a pydantic model")
    _expect(issubclass(cls.Content, BaseModel), "Content must be a pydantic model")


def _render_returns_draft(case: ChannelCase) -> None:
    draft = case.draft()
    _expect(isinstance(draft, Draft), f"render returned {type(draft).__name__}, not a Draft")
    _expect(draft.channel == case.channel.name, f"draft.channel is {draft.channel!r}")
    _expect(bool(draft.parts), "the draft has no parts")


def _validate_good(case: ChannelCase) -> None:
    channel = case.make_channel(case.channel)
    problems = channel.validate(case.draft(channel))
    _expect(isinstance(problems, list), f"validate returned {type(problems).__name__}")
    _expect(all(isinstance(p, str) for p in problems), "validate must return strings")
    _expect(problems == [], f"the good content is refused: {problems}")


def _content_flagged(case: ChannelCase, content: Mapping[str, Any]) -> None:
    channel = case.make_channel(case.channel)
    try:
        parsed = case.channel.Content.model_validate(dict(content)).model_dump()
        draft = channel.render(case.render_request(parsed))
    except (ValidationError, PermanentError):
        return
    problems = channel.validate(draft)
    _expect(isinstance(problems, list), f"validate returned {type(problems).__name__}")
    _expect(all(isinstance(p, str) and p for p in problems), "problems must be non-empty text")
    _expect(bool(problems), f"bad content passed: {dict(content)!r}")


def _good_settings(case: ChannelCase) -> None:
    case.account()


def _settings_refused(case: ChannelCase, settings: Mapping[str, Any]) -> None:
    try:
        case.channel.Account(**settings)
    except ValidationError:
        return
    raise ConformanceError(f"Account accepted bad settings: {sorted(settings)}")


# --- secrets ----------------------------------------------------------------------------


def _secret_rows(case: ChannelCase) -> list[Check]:
    views: dict[str, Callable[[BaseModel], str]] = {
        "repr": repr,
        "str": str,
        "model_dump_json": lambda account: account.model_dump_json(),
        "model_dump": lambda account: str(account.model_dump()),
    }
    rows = [Check("secrets/declared", lambda: _secrets_declared(case))]
    rows += [
        Check(f"secrets/not-in-{name}", _bound(_secret_not_in_view, case, view))
        for name, view in views.items()
    ]
    skip = "" if case.transport else "no transport: the channel is never published in the kit"
    rows.append(Check("secrets/not-in-logs", lambda: _secret_not_in_logs(case), skip))
    return rows


def _secrets_declared(case: ChannelCase) -> None:
    account = case.account()
    for name in type(account).model_fields:
        value = getattr(account, name)
        _expect(
            not (isinstance(value, str) and SECRET_NAMES.search(name)),
            f"Account field {name!r} looks secret: type it SecretStr",
        )
    for value in case.secrets():
        _expect(
            len(value) >= MIN_SECRET_LENGTH,
            f"use a secret of at least {MIN_SECRET_LENGTH} characters in good_settings, "
            "so that finding it in output means a leak",
        )


def _secret_not_in_view(case: ChannelCase, view: Callable[[BaseModel], str]) -> None:
    text = view(case.account())
    for secret in case.secrets():
        _expect(secret not in text, "a secret account field shows in plain text")


@contextlib.contextmanager
def capture_logs() -> Iterator[io.StringIO]:
    """Everything logged anywhere at DEBUG and above while the block runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _secret_not_in_logs(case: ChannelCase) -> None:
    transport = _transport(case)
    channel = case.make_channel(case.channel)
    with capture_logs() as logs, transport.succeeding():
        case.publish(channel)
    _close(channel)
    for secret in case.secrets():
        _expect(secret not in logs.getvalue(), "a secret was logged while publishing")


# --- publishing -------------------------------------------------------------------------


def _transport(case: ChannelCase) -> Transport:
    if case.transport is None:
        raise ConformanceError("this row needs a transport")
    return case.transport


def _close(channel: Channel) -> None:
    close = getattr(channel, "close", None)
    if callable(close):
        close()


def _publish_rows(case: ChannelCase) -> list[Check]:
    if case.transport is None:
        reason = "no transport: the channel is never published in the kit"
        return [Check("publish/succeeds", lambda: None, reason)]
    rows = [Check("publish/succeeds", lambda: _publish_succeeds(case))]
    rows += [
        Check(f"publish/{failure.id}", _bound(_publish_fails, case, failure))
        for failure in case.transport.failures
    ]
    skip = (
        "audience channels are deduplicated by the engine's delivery ledger"
        if case.channel.audience
        else ""
    )
    rows.append(Check("publish/idempotent", lambda: _publish_idempotent(case), skip))
    rows += _lookup_rows(case)
    return rows


def _lookup_rows(case: ChannelCase) -> list[Check]:
    """find_published, for channels that post (audience channels have the ledger)."""
    if case.channel.audience:
        skip = "audience channels are deduplicated by the engine's delivery ledger"
    elif not case.channel.supports_lookup():
        skip = (
            "the channel cannot look posts up (no find_published): the engine fails an "
            "uncertain publish for a person to check instead of posting again"
        )
    else:
        skip = ""
    return [
        Check("lookup/nothing-before-publish", lambda: _lookup_nothing(case), skip),
        Check("lookup/finds-what-another-instance-posted", lambda: _lookup_finds(case), skip),
    ]


def _lookup_nothing(case: ChannelCase) -> None:
    channel = case.make_channel(case.channel)
    with _transport(case).succeeding() as network:
        found = channel.find_published(
            case.draft(channel), case.account(), idempotency_key="kit-lookup-none"
        )
    _close(channel)
    _expect(found is None or found == [], f"find_published found {found!r} on an empty network")
    _expect(network.posts == 0, "find_published must not post")


def _lookup_finds(case: ChannelCase) -> None:
    first, second = case.make_channel(case.channel), case.make_channel(case.channel)
    with _transport(case).succeeding() as network:
        made = case.publish(first, key="kit-lookup")
        found = second.find_published(
            case.draft(second), case.account(), idempotency_key="kit-lookup"
        )
    _close(first)
    _close(second)
    _expect(found is not None, "find_published cannot tell, right after a successful post")
    _expect(found == made.external_ids, f"find_published found {found!r}, not {made.external_ids}")
    _expect(network.posts == 1, f"the lookup made {network.posts - 1} more posts")


def _publish_succeeds(case: ChannelCase) -> None:
    channel = case.make_channel(case.channel)
    with _transport(case).succeeding():
        result = case.publish(channel)
    _close(channel)
    _expect(isinstance(result, PublishResult), f"publish returned {type(result).__name__}")
    if case.channel.audience:
        statuses = [outcome.status for outcome in result.outcomes]
        _expect(statuses == ["sent"] * len(case.recipients()), f"outcomes: {statuses}")
    else:
        _expect(bool(result.external_ids), "publish returned no external ids")
        _expect(all(isinstance(i, str) and i for i in result.external_ids), "ids must be text")


def _publish_fails(case: ChannelCase, failure: Failure) -> None:
    channel = case.make_channel(case.channel)
    expected = _ERRORS[failure.expect]
    try:
        with _transport(case).failing(failure):
            result = case.publish(channel)
    except ChannelError as error:
        _expect(
            isinstance(error, expected),
            f"{failure.id} raised {type(error).__name__}, expected {expected.__name__}",
        )
        if failure.retry_after is not None:
            _expect(
                error.retry_after == failure.retry_after,
                f"retry_after is {error.retry_after}, expected {failure.retry_after}",
            )
        _expect(error.__cause__ is not None or error.__context__ is None, "chain with `from`")
        text = f"{error} {error!r}"
        for secret in case.secrets():
            _expect(secret not in text, "a secret shows in the error message")
        return
    finally:
        _close(channel)
    _expect_outcomes(case, failure, result)


def _expect_outcomes(case: ChannelCase, failure: Failure, result: PublishResult) -> None:
    """Audience channels may report a recipient's failure as an outcome instead."""
    allowed = _OUTCOMES[failure.expect]
    statuses = {outcome.status for outcome in result.outcomes}
    _expect(
        case.channel.audience and bool(statuses) and statuses <= allowed,
        f"{failure.id} did not fail: expected {_ERRORS[failure.expect].__name__}"
        + (f" or outcomes in {sorted(allowed)}, got {sorted(statuses)}" if allowed else ""),
    )


def _publish_idempotent(case: ChannelCase) -> None:
    """The same key twice, from two channel instances (a retry in another process).

    As the engine retries an uncertain publish: a channel with ``find_published`` is
    asked first and publishes again only when the network certainly holds no such post;
    one without it must make the network deduplicate (an idempotency key it honours).
    """
    first, second = case.make_channel(case.channel), case.make_channel(case.channel)
    with _transport(case).succeeding() as network:
        one = case.publish(first, key="kit-idempotent")
        found = None
        if case.channel.supports_lookup():
            found = second.find_published(
                case.draft(second), case.account(), idempotency_key="kit-idempotent"
            )
            _expect(found is not None, "find_published cannot tell: the engine would not retry")
        two = PublishResult(external_ids=found) if found else case.publish(second, "kit-idempotent")
    _close(first)
    _close(second)
    _expect(network.posts == 1, f"the same idempotency key made {network.posts} posts")
    _expect(one.external_ids == two.external_ids, "a retried publish must return the same ids")


# --- pytest integration -----------------------------------------------------------------


class ChannelConformance:
    """Subclass in a test module and set ``case``: pytest runs one test per kit row."""

    case: ClassVar[ChannelCase]

    @staticmethod
    def pytest_generate_tests(metafunc: Any) -> None:
        if "conformance_check" in metafunc.fixturenames:
            rows = checks(metafunc.cls.case)
            metafunc.parametrize("conformance_check", rows, ids=[row.id for row in rows])

    def test_conformance(self, conformance_check: Check) -> None:
        run_check(conformance_check)


def run_check(check: Check) -> None:
    """Run one row under pytest (skipping it with its reason when it does not apply)."""
    if check.skip:
        import pytest

        pytest.skip(check.skip)
    check.run()


__all__ = [
    "HTTP_FAILURES",
    "ChannelCase",
    "ChannelConformance",
    "Check",
    "ConformanceError",
    "Failure",
    "HttpTransport",
    "Network",
    "Transport",
    "capture_logs",
    "checks",
    "marker",
    "run_check",
    "run_conformance",
    "sample_recipients",
    "simple_request",
]


def __getattr__(name: str) -> Any:
    # HttpTransport needs the optional `responses` package: import it only when asked.
    if name == "HttpTransport":
        from partnercast.plugins.testing_http import HttpTransport

        return HttpTransport
    raise AttributeError(name)
