"""Signed tokens take their time from the caller: stamped with the ``now`` they are given,
checked against the reader's ``now``, never against the wall clock (run here far from it).
Tokens made before (itsdangerous stamping them with ``time.time()``) still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from itsdangerous import SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from partnercast.core import signing
from partnercast.core.settings import Settings, load_settings

MADE = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)  # when the test's tokens are made
WALL = datetime(2071, 1, 1, tzinfo=UTC)  # the wall clock meanwhile: nowhere near
DAY = 86400


@pytest.fixture
def settings() -> Settings:
    return load_settings(secret_key="s3cret-for-signing-tests-" + "x" * 16)


def _stamp(token: str, serializer_or_signer: object) -> datetime:
    if isinstance(serializer_or_signer, URLSafeTimedSerializer):
        return serializer_or_signer.loads(token, return_timestamp=True)[1]
    assert isinstance(serializer_or_signer, TimestampSigner)
    return serializer_or_signer.unsign(token, return_timestamp=True)[1]


def test_a_token_is_stamped_with_the_given_now_not_the_wall_clock(settings: Settings) -> None:
    with time_machine.travel(WALL, tick=False):
        token = signing.sign(settings, "unsubscribe", [1, 2, 3], now=MADE)
        rcpt = signing.recipient_token(settings, tenant_id=1, dispatch_id=2, contact_id=3, now=MADE)
    secret = settings.signing_secret()
    serializer = URLSafeTimedSerializer(secret, salt="partnercast.unsubscribe")
    signer = TimestampSigner(secret, salt=f"partnercast.{signing.RECIPIENT_PURPOSE}")
    assert _stamp(token, serializer) == MADE.replace(microsecond=0)
    assert _stamp(rcpt, signer) == MADE.replace(microsecond=0)


@pytest.mark.parametrize("age_days, valid", [(0, True), (29, True), (30, True), (31, False)])
def test_expiry_is_counted_at_the_readers_now(
    settings: Settings, age_days: int, valid: bool
) -> None:
    token = signing.sign(settings, "unsubscribe", [1, 2, 3], now=MADE)
    rcpt = signing.recipient_token(settings, tenant_id=1, dispatch_id=2, contact_id=3, now=MADE)
    read_at = MADE + timedelta(days=age_days)
    with time_machine.travel(WALL, tick=False):
        if valid:
            assert signing.unsign(
                settings, "unsubscribe", token, max_age_seconds=30 * DAY, now=read_at
            ) == [1, 2, 3]
            assert signing.read_recipient_token(
                settings, rcpt, max_age_seconds=30 * DAY, now=read_at
            ) == signing.RecipientToken(1, 2, 3)
            return
        with pytest.raises(signing.InvalidToken, match="expired") as raised:
            signing.unsign(settings, "unsubscribe", token, max_age_seconds=30 * DAY, now=read_at)
        # the cause is itsdangerous' SignatureExpired, as before (lead form tokens tell it)
        assert isinstance(raised.value.__cause__, SignatureExpired)
        with pytest.raises(signing.InvalidToken, match="expired"):
            signing.read_recipient_token(settings, rcpt, max_age_seconds=30 * DAY, now=read_at)


def test_a_token_stamped_after_the_readers_now_is_not_expired(settings: Settings) -> None:
    """Two clocks a little apart (or a simulated one behind the sender's): still valid."""
    token = signing.sign(settings, "unsubscribe", "x", now=MADE)
    earlier = MADE - timedelta(minutes=5)
    assert signing.unsign(settings, "unsubscribe", token, max_age_seconds=60, now=earlier) == "x"


def test_tokens_made_before_the_change_still_read(settings: Settings) -> None:
    """Links in mail already sent: itsdangerous stamped them with the wall clock itself."""
    secret = settings.signing_secret()
    with time_machine.travel(MADE, tick=False):
        old = URLSafeTimedSerializer(secret, salt="partnercast.unsubscribe").dumps([4, 5, 6])
        old_rcpt = (
            TimestampSigner(secret, salt=f"partnercast.{signing.RECIPIENT_PURPOSE}")
            .sign("4.5.6")
            .decode()
        )
    later = MADE + timedelta(days=3)
    with time_machine.travel(WALL, tick=False):
        assert signing.unsign(
            settings, "unsubscribe", old, max_age_seconds=30 * DAY, now=later
        ) == [4, 5, 6]
        assert signing.read_recipient_token(
            settings, old_rcpt, max_age_seconds=30 * DAY, now=later
        ) == signing.RecipientToken(4, 5, 6)
    # and the new code makes the very bytes itsdangerous makes
    assert signing.sign(settings, "unsubscribe", [4, 5, 6], now=MADE) == old
    assert (
        signing.recipient_token(settings, tenant_id=4, dispatch_id=5, contact_id=6, now=MADE)
        == old_rcpt
    )


def test_a_forged_token_is_not_valid_whatever_the_time(settings: Settings) -> None:
    token = signing.sign(settings, "unsubscribe", [1], now=MADE)
    with pytest.raises(signing.InvalidToken, match="not valid"):
        signing.unsign(settings, "unsubscribe", token[:-2] + "xx", max_age_seconds=DAY, now=MADE)
    with pytest.raises(signing.InvalidToken, match="not valid"):  # another purpose's key
        signing.unsign(settings, "track.link", token, max_age_seconds=DAY, now=MADE)
