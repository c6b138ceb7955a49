"""What the social channels share: the touch content, and a post built from a template.

A social touch renders ``templates/<template>.<locale>.txt`` into the post's text (usually
``{{ fields.<an editable field> }}``, so that the partner writes it), then appends the
touch's ``link`` and ``hashtags``. Every link gets UTM parameters naming the network, the
campaign, the touch and the partner. The network subclasses say how long a post may be
and how to publish it.
"""

from __future__ import annotations

import html
import re
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from partnercast.channels.social.utm import Utm, links_in, tag_links
from partnercast.plugins import (
    Channel,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    RenderRequest,
)
from partnercast.plugins.personalization import Personalizer
from partnercast.plugins.utm import tag_url

PARTNER_COPY_REQUIRED = (
    "the partner must write or edit the post text; this is the vendor's default word for word"
)
_HASHTAG = re.compile(r"#?(\w+)")
REMEMBERED_PUBLICATIONS = 10_000


class SocialContent(BaseModel):
    """What a social touch declares under ``content:`` in campaign.yaml."""

    model_config = ConfigDict(extra="forbid")

    link: str = ""
    """The link the post carries (a Jinja string, e.g. ``{{ vars.landing_url }}``); it is
    tagged with UTM parameters and appended unless the text already holds it."""
    hashtags: list[str] = Field(default_factory=list)
    """Hashtags appended to the post (``cloudsecurity`` or ``#cloudsecurity``), each
    unless the text already has it; a string is split on spaces."""
    require_partner_copy: bool = False
    """Refuse a post whose text is the vendor's default word for word."""

    @field_validator("hashtags", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return value.split() if isinstance(value, str) else value

    @field_validator("hashtags")
    @classmethod
    def _hashtag_shape(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not _HASHTAG.fullmatch(tag):
                raise ValueError(f"{tag!r} is not a hashtag (letters, digits and _ only)")
        return ["#" + tag.lstrip("#") for tag in tags]


def normalized(text: str) -> str:
    """``text`` with every run of whitespace as one space: how posts are compared."""
    return " ".join(text.split())


def plain_text(rendered: str) -> str:
    """A rendered text template as plain text.

    The engine renders ``.txt`` templates as plain text (no HTML escaping). Lines keep
    their breaks; trailing spaces and blank lines at both ends go.
    """
    lines = [line.rstrip() for line in rendered.splitlines()]
    return "\n".join(lines).strip()


class SocialChannel(Channel):
    """A post on one network, rendered from a text template and published to an account."""

    template_suffix: ClassVar[str] = ".txt"
    Content: ClassVar[type[BaseModel]] = SocialContent
    network: ClassVar[str]
    """The network's short name, as in ``utm_source``."""
    network_title: ClassVar[str]
    """The network's name in messages ("X allows 280")."""
    max_length: ClassVar[int]

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self._published: OrderedDict[str, PublishResult] = OrderedDict()

    # --- the length rule, per network ----------------------------------------------------

    def length(self, text: str) -> int:
        """The post's length as the network counts it."""
        return len(text)

    def text_problems(self, text: str) -> list[str]:
        """Network-specific problems beyond the length (characters it refuses...)."""
        return []

    # --- rendering -----------------------------------------------------------------------

    def render(self, request: RenderRequest) -> Draft:
        content = _content(request.content)
        utm = _utm(self.network, request)
        body = plain_text(request.render_template(request.template))
        vendor_body = _vendor_body(request)
        link = request.render_string(content.link).strip() if content.link else ""
        text = compose(body, link, content.hashtags, utm.parameters())
        return Draft(
            channel=self.name,
            touch_key=request.touch_key,
            locale=request.locale,
            nonce=request.nonce,
            parts={"text": text, "body": body},
            preview_html=self.preview(text, request.identity.get("name", "")),
            meta={
                "network": self.network,
                "length": self.length(text),
                "max_length": self.max_length,
                "require_partner_copy": content.require_partner_copy,
                "vendor_body": vendor_body,
                "link": tag_url(link, utm.parameters()) if link else "",
            },
        )

    def preview(self, text: str, author: str) -> str:
        """The post as the partner previews it: author, text, and the length count."""
        lines = "<br>".join(html.escape(line) for line in text.split("\n"))
        count = f"{self.length(text):,} / {self.max_length:,}"
        return (
            f'<article class="pc-post pc-post-{self.network}">'
            f"<header>{html.escape(author)} on {html.escape(self.network_title)}</header>"
            f"<p>{lines}</p><footer>{count}</footer></article>"
        )

    # --- validation ----------------------------------------------------------------------

    def validate(self, draft: Draft) -> list[str]:
        text = draft.parts.get("text", "")
        if not text.strip():
            return ["the post is empty"]
        problems: list[str] = []
        length = self.length(text)
        if length > self.max_length:
            problems.append(
                f"the post is {length:,} characters, "
                f"{self.network_title} allows {self.max_length:,}"
            )
        problems.extend(self.text_problems(text))
        if Personalizer(draft.nonce).has_markers(text):
            problems.append(
                "the post contains a contact field (such as {{ first_name }}); "
                "a post is read by everyone, not by one contact"
            )
        problems.extend(_partner_copy_problems(draft))
        return problems


def compose(body: str, link: str, hashtags: list[str], utm: Mapping[str, str]) -> str:
    """The post: the body, then the link and the hashtags it does not already hold."""
    known_links = {url.split("?")[0] for url in links_in(body)}
    present = {tag.lower() for tag in re.findall(r"#\w+", body)}
    tail = [link] if link and link.split("?")[0] not in known_links else []
    tags = [tag for tag in hashtags if tag.lower() not in present]
    if tags:
        tail.append(" ".join(tags))
    text = "\n\n".join(part for part in (body, *tail) if part)
    return tag_links(text, utm)


def _content(values: Mapping[str, Any]) -> SocialContent:
    try:
        return SocialContent.model_validate(dict(values))
    except ValidationError as error:
        message = f"the touch's social content is invalid: {describe(error)}"
        raise PermanentError(message) from error


def describe(error: ValidationError) -> str:
    """A validation error as one line, without the input values (they may be secrets)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    )


def _utm(network: str, request: RenderRequest) -> Utm:
    partner = request.partner_external_id or _slug(request.identity.get("name", ""))
    return Utm(
        source=network,
        campaign=request.campaign_key,
        content=request.touch_key,
        partner=partner,
    )


def _slug(name: str) -> str:
    return "-".join(re.findall(r"\w+", name.lower()))


def _vendor_body(request: RenderRequest) -> str | None:
    if request.render_vendor_template is None:
        return None
    return plain_text(request.render_vendor_template(request.template))


def _partner_copy_problems(draft: Draft) -> list[str]:
    if not draft.meta.get("require_partner_copy"):
        return []
    vendor_body = draft.meta.get("vendor_body")
    if vendor_body is None:
        # Fail closed: without the vendor's default there is no telling who wrote the post.
        return ["the partner must write the post text, and the vendor's default is unknown"]
    if normalized(draft.parts.get("body", "")) == normalized(vendor_body):
        return [PARTNER_COPY_REQUIRED]
    return []


class PublishingChannel(SocialChannel):
    """Publishing shared by the networks: checks, then one post per idempotency key.

    Neither network's API takes an idempotency key. The engine records the external ids
    of every dispatch and never publishes a dispatch that has them; when an attempt may
    have posted without its ids being recorded (a crash, a timeout, a dropped
    connection), the engine calls :meth:`find_published`, which reads the account's own
    recent posts and matches this post's exact text made since the attempt started.
    Inside one process, a key already published returns the same ids without a call.
    X itself also refuses an identical second tweet (403, "duplicate content").
    """

    LOOKUP_SKEW: ClassVar[timedelta] = timedelta(minutes=5)
    """How far before the attempt's start a post still counts (clocks differ)."""

    @abstractmethod
    def post(self, text: str, account: Any) -> str:
        """Publish ``text`` with ``account``; return the network's id of the post."""

    @abstractmethod
    def find_posts(self, text: str, account: Any, since: datetime | None) -> list[str] | None:
        """Ids of the account's posts made since ``since`` whose text is ``text``; None
        when none was found among the posts read but the account has made more since
        than a lookup reads (the network cannot be said to hold no such post)."""

    def find_published(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        since: datetime | None = None,
    ) -> list[str] | None:
        checked = self.checked_account(account)
        if idempotency_key in self._published:
            return list(self._published[idempotency_key].external_ids)
        start = since - self.LOOKUP_SKEW if since is not None else None
        found = self.find_posts(draft.parts.get("text", ""), checked, start)
        return None if found is None else found[:1]

    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
    ) -> PublishResult:
        checked = self.checked_account(account)
        if idempotency_key in self._published:
            return PublishResult(external_ids=list(self._published[idempotency_key].external_ids))
        problems = self.validate(draft)
        if problems:
            raise PermanentError("; ".join(problems))
        result = PublishResult(external_ids=[self.post(draft.parts["text"], checked)])
        self._published[idempotency_key] = result
        if len(self._published) > REMEMBERED_PUBLICATIONS:
            self._published.popitem(last=False)
        return result

    def checked_account(self, account: Any) -> Any:
        """``account`` as this channel's Account model (a mapping is validated)."""
        if isinstance(account, self.Account):
            return account
        if isinstance(account, Mapping):
            try:
                return self.Account.model_validate(dict(account))
            except ValidationError as error:
                message = f"the {self.title} account is invalid: {describe(error)}"
                raise PermanentError(message) from error
        raise PermanentError(f"the {self.name} channel needs a {self.Account.__name__}")
