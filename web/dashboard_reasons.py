"""The capacity balance's reasons in the visitor's language.

:mod:`partnercast.concierge.capacity` says why as data (a code and its values, see
:class:`~partnercast.concierge.capacity.Reason`); here each code has its English text,
marked for the ``dashboard`` catalogue, and is worded through it. The CLI keeps the
library's English sentences.
"""

from __future__ import annotations

from collections.abc import Iterable

from babel import numbers

from partnercast.concierge import capacity
from partnercast.web.i18n import babel_locale, gettext_for, ngettext_for

DOMAIN = "dashboard"


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated when worded."""
    return message


TEXTS = {
    capacity.SPREAD: N_(
        "%(language)s: %(partners)s over %(concierges)s (%(names)s): at most %(target)s each"
    ),
    capacity.OVER_CAP: N_("over the cap of %(cap)s: %(language)s needs %(needed)s concierges"),
    capacity.NOT_ASSIGNED: N_("not assigned yet"),
    capacity.OVER_SHARE: N_("%(concierge)s is over the even share of %(share)s"),
    capacity.NOT_COVERED: N_("its concierge does not cover %(language)s"),
    capacity.MOST_ROOM: N_("%(concierge)s has the most room in %(language)s"),
}


def worded(reasons: Iterable[capacity.Reason], locale: str | None) -> str:
    """The reasons as one line in the ``locale``'s language (a reason of a code this module
    does not know is shown in the library's English)."""
    _ = gettext_for(locale, DOMAIN)
    ngettext = ngettext_for(locale, DOMAIN)
    where = babel_locale(locale)
    parts = []
    for reason in reasons:
        values: dict[str, str | int] = {
            name: numbers.format_decimal(value, locale=where) if isinstance(value, int) else value
            for name, value in reason.values.items()
        }
        if reason.code == capacity.SPREAD:
            partners, concierges = reason.values["partners"], reason.values["concierges"]
            assert isinstance(partners, int) and isinstance(concierges, int)
            values["partners"] = ngettext("%(num)s partner", "%(num)s partners", partners)
            values["concierges"] = ngettext("%(num)s concierge", "%(num)s concierges", concierges)
        text = TEXTS.get(reason.code)
        parts.append(_(text, **values) if text else capacity.english([reason]))
    line = parts[0] if parts else ""
    for part in parts[1:]:
        line = _("%(reason)s; %(more)s", reason=line, more=part)
    return line
