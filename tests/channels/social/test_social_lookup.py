"""find_published and fetch_metrics over real HTTP against the stand-in, as X and LinkedIn
answer them (t.co links, the Posts API finder, socialActions, share statistics)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from partnercast.channels.social import linkedin as linkedin_module
from partnercast.channels.social import x as x_module
from partnercast.channels.social.linkedin import LinkedInAccount, LinkedInChannel
from partnercast.channels.social.x import XAccount, XChannel
from partnercast.demo.social_standin import LINKEDIN_POSTS, X_POSTS, SocialStandIn
from partnercast.plugins import PermanentError, TransientError

CONTENT = {"link": "https://northwind.example/shield", "hashtags": ["CloudSecurity"]}


@pytest.fixture
def standin() -> Iterator[SocialStandIn]:
    with SocialStandIn() as server:
        yield server


@pytest.fixture
def x_here(standin: SocialStandIn, x_account: XAccount) -> XAccount:
    return XAccount.model_validate({**x_account.model_dump(), "api_base_url": standin.x_base_url})


@pytest.fixture
def li_here(standin: SocialStandIn, linkedin_account: LinkedInAccount) -> LinkedInAccount:
    return LinkedInAccount.model_validate(
        {**linkedin_account.model_dump(), "api_base_url": standin.linkedin_base_url}
    )


def test_x_finds_a_post_whose_answer_was_lost(
    standin: SocialStandIn, make_request, x_here: XAccount
) -> None:
    channel = XChannel()
    draft = channel.render(make_request("Cloud & (hybrid) <security>", content=CONTENT))
    started = datetime.now(UTC)
    assert channel.find_published(draft, x_here, idempotency_key="k", since=started) == []
    standin.drop_after_post(X_POSTS)
    with pytest.raises(TransientError):
        channel.publish(draft, x_here, idempotency_key="k")
    [post] = standin.x_posts()
    # another process: nothing remembered in memory; the link comes back as t.co
    found = XChannel().find_published(draft, x_here, idempotency_key="k", since=started)
    assert found == [post.id]
    # a post made before the attempt started is not this dispatch's
    later = started + timedelta(hours=1)
    assert XChannel().find_published(draft, x_here, idempotency_key="k", since=later) == []
    # a different text is not this post
    other = channel.render(make_request("Another text", content=CONTENT))
    assert XChannel().find_published(other, x_here, idempotency_key="k2", since=started) == []


def test_x_lookup_reads_only_the_accounts_own_timeline(
    standin: SocialStandIn, make_request, x_here: XAccount
) -> None:
    draft = XChannel().render(make_request(content=CONTENT))
    XChannel().publish(draft, x_here, idempotency_key="k")
    someone_else = x_here.model_copy(
        update={"access_token": x_here.access_token.__class__("999-z")}
    )
    assert XChannel().find_published(draft, someone_else, idempotency_key="k") == []
    timeline = [r for r in standin.requests if r.path.startswith("/2/users/")]
    assert [r.path for r in timeline] == ["/2/users/me", "/2/users/999/tweets"]


def test_linkedin_finds_a_post_whose_answer_was_lost(
    standin: SocialStandIn, make_request, li_here: LinkedInAccount
) -> None:
    channel = LinkedInChannel()
    draft = channel.render(
        make_request("Hybrid (cloud) #done", content=CONTENT, channel="linkedin")
    )
    started = datetime.now(UTC)
    standin.drop_after_post(LINKEDIN_POSTS)
    with pytest.raises(TransientError):
        channel.publish(draft, li_here, idempotency_key="k")
    [post] = standin.linkedin_posts()
    assert LinkedInChannel().find_published(draft, li_here, idempotency_key="k", since=started) == [
        post.id
    ]
    [finder] = [r for r in standin.requests if r.method == "GET" and r.path == LINKEDIN_POSTS]
    assert finder.query["q"] == ["author"]
    assert finder.query["author"] == ["urn:li:person:8675309"]
    assert finder.headers["X-RestLi-Method"] == "FINDER"


def test_linkedin_lookup_refused_is_not_a_no(
    standin: SocialStandIn, make_request, li_here: LinkedInAccount
) -> None:
    """Without read permission LinkedIn answers 403: that is "cannot tell", never "no post"."""
    channel = LinkedInChannel()
    draft = channel.render(make_request(content=CONTENT, channel="linkedin"))
    standin.fail_next(LINKEDIN_POSTS, 403, message="Not enough permissions")
    with pytest.raises(PermanentError, match="403"):
        channel.find_published(draft, li_here, idempotency_key="k")


def test_metrics_in_the_documented_shapes(
    standin: SocialStandIn, make_request, x_here: XAccount, li_here: LinkedInAccount
) -> None:
    x = XChannel()
    tweet = x.publish(x.render(make_request(content=CONTENT)), x_here, idempotency_key="x")
    standin.set_metrics(tweet.external_ids[0], impression_count=120, like_count=4)
    [x_metrics] = x.fetch_metrics(x_here, tweet.external_ids)
    assert x_metrics["impression_count"] == 120 and x_metrics["like_count"] == 4

    li = LinkedInChannel()
    li_draft = li.render(make_request(content=CONTENT, channel="linkedin"))
    member_post = li.publish(li_draft, li_here, idempotency_key="m").external_ids[0]
    standin.set_metrics(member_post, like_count=3, comment_count=2)
    assert li.fetch_metrics(li_here, [member_post, "urn:li:share:1"]) == [
        {"external_id": member_post, "like_count": 3, "comment_count": 2},
        {"external_id": "urn:li:share:1"},
    ]

    org = li_here.model_copy(update={"author_urn": "urn:li:organization:2414183"})
    org_post = LinkedInChannel().publish(li_draft, org, idempotency_key="o").external_ids[0]
    standin.set_metrics(org_post, impression_count=900, click_count=31, like_count=7)
    [stats] = li.fetch_metrics(org, [org_post])
    assert stats["impression_count"] == 900 and stats["click_count"] == 31
    request = [r for r in standin.requests if "ShareStatistics" in r.path][-1]
    assert request.query["shares"] == [f"List({org_post})"]
    li.close()


def _busy_since(channel: XChannel | LinkedInChannel, account, posts: int) -> None:  # type: ignore[no-untyped-def]
    """The partner posts ``posts`` other texts after the uncertain attempt."""
    for number in range(posts):
        channel.post(f"Another post of the partner's, number {number}.", account)


@pytest.mark.parametrize("beyond", [False, True])
def test_x_lookup_past_what_it_reads_cannot_tell(
    standin: SocialStandIn,
    make_request,  # type: ignore[no-untyped-def]
    x_here: XAccount,
    monkeypatch: pytest.MonkeyPatch,
    beyond: bool,
) -> None:
    """The lost post lies past the pages read (1 page of 5 here): None, not "no post"."""
    monkeypatch.setattr(x_module, "TIMELINE_PAGES", 1)
    monkeypatch.setattr(x_module, "TIMELINE_PAGE_SIZE", 5)
    channel = XChannel()
    draft = channel.render(make_request(content=CONTENT))
    started = datetime.now(UTC)
    standin.drop_after_post(X_POSTS)
    with pytest.raises(TransientError):
        channel.publish(draft, x_here, idempotency_key="k")
    _busy_since(channel, x_here, 5 if beyond else 4)
    found = XChannel().find_published(draft, x_here, idempotency_key="k", since=started)
    assert found == (None if beyond else [standin.x_posts()[0].id])
    other = channel.render(make_request("Never posted", content=CONTENT))
    unknown = XChannel().find_published(other, x_here, idempotency_key="k2", since=started)
    assert unknown == (None if beyond else [])


@pytest.mark.parametrize("beyond", [False, True])
def test_linkedin_lookup_pages_back_to_the_attempt_then_cannot_tell(
    standin: SocialStandIn,
    make_request,  # type: ignore[no-untyped-def]
    li_here: LinkedInAccount,
    monkeypatch: pytest.MonkeyPatch,
    beyond: bool,
) -> None:
    """Pages of 3, at most 2: the post is found on the second page; past it, None."""
    monkeypatch.setattr(linkedin_module, "LOOKUP_COUNT", 3)
    monkeypatch.setattr(linkedin_module, "LOOKUP_PAGES", 2)
    channel = LinkedInChannel()
    request = make_request("Hybrid (cloud) #done", content=CONTENT, channel="linkedin")
    draft = channel.render(request)
    channel.post("A post from before the attempt.", li_here)
    started = datetime.now(UTC)
    standin.drop_after_post(LINKEDIN_POSTS)
    with pytest.raises(TransientError):
        channel.publish(draft, li_here, idempotency_key="k")
    _busy_since(channel, li_here, 6 if beyond else 4)
    found = LinkedInChannel().find_published(draft, li_here, idempotency_key="k", since=started)
    assert found == (None if beyond else [standin.linkedin_posts()[1].id])
    finders = [r for r in standin.requests if r.method == "GET" and r.path == LINKEDIN_POSTS]
    assert [r.query["start"] for r in finders] == [["0"], ["3"]]
