"""Both channels over real HTTP against the local stand-in of the X and LinkedIn APIs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from partnercast.channels.social.linkedin import LinkedInAccount, LinkedInChannel
from partnercast.channels.social.x import XAccount, XChannel
from partnercast.demo.social_standin import LINKEDIN_POSTS, X_POSTS, SocialStandIn
from partnercast.plugins import AuthError, TransientError


@pytest.fixture
def standin() -> Iterator[SocialStandIn]:
    with SocialStandIn() as server:
        yield server


def test_posts_reach_the_standin_over_http(
    standin: SocialStandIn, make_request, x_account: XAccount, linkedin_account: LinkedInAccount
) -> None:
    x_here = XAccount.model_validate({**x_account.model_dump(), "api_base_url": standin.x_base_url})
    linkedin_here = LinkedInAccount.model_validate(
        {**linkedin_account.model_dump(), "api_base_url": standin.linkedin_base_url}
    )
    content = {"link": "https://northwind.example/shield", "hashtags": ["CloudSecurity"]}
    x, linkedin = XChannel(), LinkedInChannel()
    x_draft = x.render(make_request("Hybrid cloud (done right)", content=content))
    li_draft = linkedin.render(
        make_request("Hybrid cloud (done right)", content=content, channel="linkedin")
    )

    tweet = x.publish(x_draft, x_here, idempotency_key="d-x")
    post = linkedin.publish(li_draft, linkedin_here, idempotency_key="d-li")
    linkedin.close()

    [tweet_request] = standin.posts(X_POSTS)
    assert tweet_request.body == {"text": x_draft.parts["text"]}
    assert tweet_request.headers["Authorization"] == "OAuth (present)"
    [post_request] = standin.posts(LINKEDIN_POSTS)
    assert post_request.body["commentary"].startswith("Hybrid cloud \\(done right\\)")
    assert post_request.body["author"] == "urn:li:person:8675309"
    assert post_request.headers["LinkedIn-Version"] == "202605"
    assert post.external_ids[0].startswith("urn:li:share:")
    metrics = x.fetch_metrics(x_here, tweet.external_ids)
    assert metrics == [{"external_id": tweet.external_ids[0], **metrics[0]}]
    assert metrics[0]["like_count"] == 0


def test_standin_failures_come_back_typed(
    standin: SocialStandIn, make_request, x_account: XAccount, linkedin_account: LinkedInAccount
) -> None:
    x_here = XAccount.model_validate({**x_account.model_dump(), "api_base_url": standin.x_base_url})
    linkedin_here = LinkedInAccount.model_validate(
        {**linkedin_account.model_dump(), "api_base_url": standin.linkedin_base_url}
    )
    standin.fail_next(X_POSTS, 429, retry_after=7)
    standin.fail_next(LINKEDIN_POSTS, 401)
    with pytest.raises(TransientError) as limited:
        XChannel().publish(XChannel().render(make_request()), x_here, idempotency_key="a")
    assert limited.value.retry_after == 7.0
    with pytest.raises(AuthError, match="STANDIN"):
        LinkedInChannel().publish(
            LinkedInChannel().render(make_request()), linkedin_here, idempotency_key="b"
        )
    # the failure was for one call only
    assert XChannel().publish(XChannel().render(make_request()), x_here, idempotency_key="c")
