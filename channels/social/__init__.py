"""The built-in social channels: ``x`` (X, formerly Twitter) and ``linkedin``.

Two channels rather than one ``social`` channel with a network setting, because the two
networks differ in everything a channel declares: the account a partner connects (four
OAuth 1.0a values for X, a bearer token and an author URN for LinkedIn), the length rule
(X's weighted 280, LinkedIn's 3,000 characters), the text format (LinkedIn's "little"
text escapes) and the metrics. As two channels, a partner connects each network as its
own account, a campaign schedules each network as its own touch (both may share one
template), and each post is its own dispatch: one network failing or being retried never
holds back or re-sends the other.

A plugin on the public API only, exactly as a third-party channel is: the engine
registers it by name among its built-ins.
"""

from __future__ import annotations

from partnercast.plugins import RegisterChannel, hookimpl


@hookimpl
def register_channels(register: RegisterChannel) -> None:
    from partnercast.channels.social.linkedin import LinkedInChannel
    from partnercast.channels.social.x import XChannel

    register(XChannel)
    register(LinkedInChannel)
