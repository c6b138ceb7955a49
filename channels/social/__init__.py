"""The built-in social channels: ``x`` (X, formerly Twitter) and ``linkedin``.

Two channels rather than one ``social`` channel with a network setting, because the two
networks differ in everything a channel declares: the account a partner connects (four
OAuth 1.0a values for X, a bearer token and an author URN for LinkedIn), the length rule
(X's weighted 280, LinkedIn's 3,000 characters), the text format (LinkedIn's "little"
text escapes) and the metrics. As two channels, a partner connects each network as its
own account, a campaign schedules each network as its own touch (both may share one
template), and each post is its own dispatch: one network failing or being retried never
holds back or re-sends the other.

Registered through the ``partnercast`` entry point, exactly as a third-party channel is.
"""

from __future__ import annotations

from collections.abc import Callable

from partnercast.plugins import Channel, hookimpl


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    from partnercast.channels.social.linkedin import LinkedInChannel
    from partnercast.channels.social.x import XChannel

    register(XChannel)
    register(LinkedInChannel)
