"""The campaign specification: what ``campaign.yaml`` holds, as pydantic models.

A :class:`CampaignSpec` is the parsed, checked content of one campaign folder's
``campaign.yaml`` (templates live beside it; see :mod:`partnercast.campaigns.loader`). It is
also what a stored campaign version holds as JSON, so :func:`partnercast.campaigns.store.
version_spec` gives the same object back.

Validation happens in two layers, both inside ``CampaignSpec.model_validate``:

* each model checks its own values (types, ranges, shapes);
* the campaign checks what only the whole campaign knows (a localised text covers every
  declared locale, a touch falls inside the cycle, a variant targets a declared segment...).
  Those checks are field validators that read the fields declared before them, so one
  broken field never hides the problems of the others. They raise one
  :data:`CAMPAIGN_RULE` error whose ``ctx["violations"]`` lists every problem with its exact
  location (a path from the spec's root), which the loader turns into ``file:line``.

Localised text: either one string for every locale, or a mapping locale -> string that
covers every locale of the campaign. :func:`localize` picks the text for one locale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, overload
from urllib.parse import urlparse

from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from partnercast.campaigns.partner_text import template_syntax_problems

CYCLE_DAYS_MIN = 30
CYCLE_DAYS_MAX = 60
MERGE_TOKENS = ("first_name", "last_name", "company", "email")
"""Contact values a partner may merge into a text field (``{{ first_name }}``)."""

CAMPAIGN_RULE = "campaign_rule"
"""Error type of the campaign-level checks; their message is a complete sentence."""

FieldType = Literal["text", "choice", "bool", "date", "url"]
MergeToken = Literal["first_name", "last_name", "company", "email"]
LocalizedMapping = dict[str, str]
Loc = tuple[str | int, ...]

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SEGMENT_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_TEMPLATE = re.compile(r"[a-z0-9][a-z0-9_-]*(?:/[a-z0-9][a-z0-9_-]*)*")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _./&-]{0,39}")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names of a send window, in ``date.weekday()`` order."""


# --- small value types --------------------------------------------------------------------


def _rule(message: str) -> PydanticCustomError:
    return PydanticCustomError(CAMPAIGN_RULE, "{message}", {"message": message})


def _plain(message: str) -> PydanticCustomError:
    """An error about one value; the loader prefixes it with the value's path."""
    return PydanticCustomError("value_error", "{message}", {"message": message})


def _localized_text(value: Any) -> str | LocalizedMapping:
    if isinstance(value, str):
        return value
    if (
        isinstance(value, Mapping)
        and value
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        return dict(value)
    raise _plain("must be text, or a mapping of locale to text (en: ..., de: ...)")


def _variable_value(value: Any) -> str | int | float | bool | LocalizedMapping:
    if isinstance(value, float) and not math.isfinite(value):
        raise _plain(f"must be a finite number, got {value}")
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return _localized_text(value)
    raise _plain("must be a scalar (text, number, true/false) or a mapping of locale to text")


def _slug(value: str) -> str:
    if len(value) > 64 or not _SLUG.fullmatch(value):
        raise _plain(f"{value!r} must be lower-case letters, digits and single hyphens")
    return value


def _segment_key(value: str) -> str:
    if not _SEGMENT_KEY.fullmatch(value):
        raise _plain(f"{value!r} is not a segment key (lower-case letters, digits, - and _)")
    return value


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise _plain(
            f"{value!r} must start with a letter and hold only lower-case letters, "
            "digits and _ (templates write it as a name, e.g. fields.headline)"
        )
    return value


def _locale(value: str) -> str:
    try:
        canonical = str(Locale.parse(value))
    except (UnknownLocaleError, ValueError, TypeError) as error:
        raise _rule(
            f"unknown locale {value!r} (use a CLDR locale id such as en, de or pt_BR)"
        ) from error
    if canonical != value:
        raise _rule(f"locale {value!r} should be written {canonical!r}")
    return value


LocalizedText = Annotated[str | LocalizedMapping, PlainValidator(_localized_text)]
"""One string for every locale, or a mapping locale -> string."""

VariableValue = Annotated[
    str | int | float | bool | LocalizedMapping, PlainValidator(_variable_value)
]
"""A campaign variable: any scalar, or a localised text mapping."""

Slug = Annotated[str, AfterValidator(_slug)]
SegmentKey = Annotated[str, AfterValidator(_segment_key)]
Name = Annotated[str, AfterValidator(_name)]
LocaleId = Annotated[str, AfterValidator(_locale)]


@overload
def localize(value: str | Mapping[str, str], locale: str, default_locale: str) -> str: ...
@overload
def localize(value: Any, locale: str, default_locale: str) -> Any: ...
def localize(value: Any, locale: str, default_locale: str) -> Any:
    """The text of ``value`` for ``locale``.

    A mapping gives its ``locale`` entry, else its ``default_locale`` entry, else its first
    entry; a plain string, and any non-text value (bool, number, None), is returned as is,
    so callers may pass every layer's values through here.
    """
    if not isinstance(value, Mapping):
        return value
    if locale in value:
        return value[locale]
    if default_locale in value:
        return value[default_locale]
    return next(iter(value.values()), "")


def localized_parts(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Each text of a localised value with its location (``loc`` or ``loc + (locale,)``)."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, Mapping):
        for locale, text in value.items():
            if isinstance(text, str):
                yield (*loc, locale), text


@dataclass(frozen=True)
class Violation:
    """One campaign-level problem and where it is (a path from the spec's root)."""

    loc: Loc
    message: str


def _raise_violations(violations: list[Violation]) -> None:
    if violations:
        raise PydanticCustomError(
            CAMPAIGN_RULE,
            "{summary}",
            {
                "summary": "; ".join(v.message for v in violations),
                "violations": [(v.loc, v.message) for v in violations],
            },
        )


# --- the models ---------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditableField(_Model):
    """One thing a partner may customise, and the rules its value must follow.

    ``default`` is what the touch shows when the partner leaves the field alone (a
    localised text for text and url fields). Partner values are checked against these rules
    by :mod:`partnercast.campaigns.customization`; the default is checked here.
    """

    type: FieldType
    label: str = ""
    """Shown to partners; empty means the field's name."""
    hint: str = ""
    """A short help text shown to partners next to the field."""
    required: bool = False
    """The partner must give a value when there is no default."""
    max_length: StrictInt | None = None
    """text only: the most characters one locale's text may hold."""
    merge_tokens: list[MergeToken] = Field(default_factory=list)
    """text only: the contact values a partner may merge in, as ``{{ first_name }}``."""
    choices: list[str] | None = None
    """choice only: the values a partner may pick from."""
    default: Any = None

    @model_validator(mode="after")
    def _options_fit_the_type(self) -> EditableField:
        if self.max_length is not None and (self.type != "text" or self.max_length < 1):
            raise _plain("max_length needs a text field and a length of at least 1")
        if self.merge_tokens and self.type != "text":
            raise _plain("merge_tokens apply only to text fields")
        if self.type == "choice":
            if not self.choices:
                raise _plain("a choice field needs a non-empty list of choices")
            if len(set(self.choices)) != len(self.choices):
                raise _plain("choices must not repeat")
        elif self.choices is not None:
            raise _plain("choices apply only to choice fields")
        return self

    def value_problems(self, value: Any) -> list[str]:
        """Why ``value`` (one locale's value) breaks this field's rules; empty when it fits."""
        if value is None:
            return []
        if self.type == "bool":
            return [] if isinstance(value, bool) else [f"must be true or false, got {value!r}"]
        if not isinstance(value, str):
            return [f"must be text, got {value!r}"]
        if self.type == "choice":
            choices = ", ".join(repr(c) for c in self.choices or [])
            return [] if value in (self.choices or []) else [f"{value!r} is not one of {choices}"]
        if self.type == "date":
            return [] if _is_iso_date(value) else [f"{value!r} is not a date (YYYY-MM-DD)"]
        if self.type == "url":
            return [] if _is_http_url(value) else [f"{value!r} is not an http(s) URL"]
        return self._text_problems(value)

    def _text_problems(self, value: str) -> list[str]:
        problems = []
        if self.max_length is not None and len(value) > self.max_length:
            problems.append(f"is {len(value)} characters long, more than {self.max_length}")
        problems.extend(template_syntax_problems(value, self.merge_tokens))
        return problems

    @property
    def localizable(self) -> bool:
        """Whether values may be a mapping locale -> text (text and url fields)."""
        return self.type in ("text", "url")


def _is_iso_date(value: str) -> bool:
    if not _ISO_DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


class VariantSpec(_Model):
    """What changes for partners of one target segment (keyed by segment in ``variants``).

    ``variables`` override campaign variables of the same name; ``defaults`` override the
    default of editable fields of the same name. A partner's own customisation still wins.
    """

    variables: dict[Name, VariableValue] = Field(default_factory=dict)
    defaults: dict[Name, Any] = Field(default_factory=dict)


def _clock(value: Any) -> str:
    """A local time of day, ``HH:MM`` (24-hour clock; ``24:00`` is the end of the day)."""
    if not isinstance(value, str):
        raise _plain(f'must be a time of day in quotes, such as "09:00", got {value!r}')
    match = _CLOCK.fullmatch(value.strip())
    if match is None:
        raise _plain(f'{value!r} is not a time of day (HH:MM, such as "09:00")')
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise _plain(f"{value!r} is not a time of day (00:00 to 24:00)")
    return f"{hours:02d}:{minutes:02d}"


Clock = Annotated[str, PlainValidator(_clock)]


def clock_minutes(value: str) -> int:
    """Minutes since midnight of an ``HH:MM`` clock value (``24:00`` is 1440)."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


class SendWindow(_Model):
    """When a touch may go out, in each partner's own time zone.

    ``days`` are the local weekdays on which it may go out; ``start`` to ``end`` the local
    hours (end excluded). A window never crosses midnight: write ``end: "24:00"`` for the
    end of the day. See :mod:`partnercast.campaigns.send_windows` for the arithmetic.
    """

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)
    start: Clock
    end: Clock

    @field_validator("days")
    @classmethod
    def _days_unique(cls, days: list[str]) -> list[str]:
        repeated = sorted({day for day in days if days.count(day) > 1}, key=WEEKDAYS.index)
        if repeated:
            raise _plain(f"days lists {', '.join(repeated)} more than once")
        return days

    @field_validator("start")
    @classmethod
    def _start_is_in_the_day(cls, start: str) -> str:
        if start == "24:00":
            raise _plain("start must be before 24:00")
        return start

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and clock_minutes(end) <= clock_minutes(start):
            raise _plain(
                f"end {end} is not after start {start} (a window cannot cross midnight; "
                'use end: "24:00" and a second touch, or start earlier)'
            )
        return end

    @property
    def weekdays(self) -> frozenset[int]:
        """The allowed days as ``date.weekday()`` numbers (Monday is 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.days)

    def describe(self) -> str:
        """``mon-fri 09:00-11:00`` (local time)."""
        return f"{_day_ranges(self.days)} {self.start}-{self.end}"


def _day_ranges(days: Sequence[str]) -> str:
    numbers = sorted(WEEKDAYS.index(day) for day in days)
    if len(numbers) == len(WEEKDAYS):
        return "every day"
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(
        WEEKDAYS[run[0]] if len(run) == 1 else f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}"
        for run in runs
    )


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise _plain(
            f"{value!r} is not a region name (up to 40 letters, digits, spaces and -_./&, "
            "as in the partners' region column)"
        )
    return value


Region = Annotated[str, AfterValidator(_region)]


class WaveSpec(_Model):
    """Partners of some regions, whose touches all move ``offset_days`` later.

    A partner belongs to the first wave naming its region (case does not matter); a wave
    with ``others: true`` takes every partner whose region no wave names.
    """

    regions: list[Region] = Field(default_factory=list)
    others: StrictBool = False
    """The catch-all: partners whose region no wave names."""
    offset_days: StrictInt
    """Days after the cycle's own touch days (0: on the touch's day)."""

    @field_validator("offset_days")
    @classmethod
    def _offset_not_negative(cls, offset: int) -> int:
        if offset < 0:
            raise _plain(f"must be 0 or more days after the cycle start, got {offset}")
        return offset

    @model_validator(mode="after")
    def _names_someone(self) -> WaveSpec:
        if not self.regions and not self.others:
            raise _plain("a wave names regions, or is the catch-all (others: true), or both")
        return self

    def label(self) -> str:
        names = [*self.regions, *(["others"] if self.others else [])]
        return "+".join(names)


class TouchSpec(_Model):
    """One channel action on one day of the cycle.

    ``template`` names the template without locale and suffix: touch ``email/intro`` in
    locale ``de`` on the email channel is ``templates/email/intro.de.mjml``
    (see :meth:`template_file`). ``subject`` and ``preheader`` are Jinja strings rendered
    with the same context as the template, handed to the channel in its content (which
    decides whether it needs them: the email channel's ``check_touch``).
    """

    key: Slug
    channel: str
    day: StrictInt
    """Day of the cycle, 1 (the cycle's first day) to ``cycle_days``."""
    template: str
    subject: LocalizedText | None = None
    preheader: LocalizedText | None = None
    content: dict[str, Any] = Field(default_factory=dict)
    """Channel-specific content (post options, ad keywords...), checked by the channel's
    ``Content`` model; values may be localised texts."""
    send_window: SendWindow | None = None
    """Overrides the campaign's ``send_window`` for this touch."""

    @field_validator("day")
    @classmethod
    def _day_is_positive(cls, day: int) -> int:
        if day < 1:
            raise _plain(f"must be at least 1 (the cycle's first day), got {day}")
        return day

    @field_validator("template")
    @classmethod
    def _template_shape(cls, template: str) -> str:
        if not _TEMPLATE.fullmatch(template):
            raise _plain(
                f"{template!r} must be a path under templates/ without locale or suffix, "
                "such as email/intro"
            )
        return template

    def template_file(self, locale: str, suffix: str) -> str:
        """The template's path relative to ``templates/`` for one locale and suffix."""
        return f"{self.template}.{locale}{suffix}"


class TrackingSpec(_Model):
    """What the engine measures of an email touch (campaigns/tracking_links.py).

    Both on by default; ``opens: false`` leaves the pixel out for privacy, ``clicks:
    false`` leaves links as they are (no redirect, no UTM added).
    """

    opens: StrictBool = True
    clicks: StrictBool = True


class CampaignSpec(_Model):
    """A whole campaign, as written in ``campaign.yaml``.

    Layers, each overriding the one before: ``variables`` (campaign) < ``variants[segment]``
    < the partner's customisation of ``editable_fields``. ``locked`` zones are vendor text
    that no layer can change. Fields are declared in dependency order: the campaign-level
    validators below read the fields declared before them.
    """

    key: Slug
    """Identifies the campaign within its tenant; loading the same key adds a version."""
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    cycle_days: StrictInt
    """Length of one cycle in days (30 to 60)."""
    locales: list[LocaleId] = Field(min_length=1)
    default_locale: str
    segments: list[SegmentKey] = Field(min_length=1)
    """Keys of the tenant's segments this campaign targets, in order of preference."""
    auto_approve_allowed: StrictBool = False
    """Whether partners may choose to have every touch approved automatically."""
    require_readiness: StrictBool = False
    """Whether only partners that meet the whole readiness checklist are enrolled."""
    variables: dict[Name, VariableValue] = Field(default_factory=dict)
    """Campaign variables, ``vars.<name>`` in templates."""
    locked: dict[Name, LocalizedText] = Field(default_factory=dict)
    """Vendor text partners can never change, ``locked.<name>`` in templates."""
    editable_fields: dict[Name, EditableField] = Field(default_factory=dict)
    """What partners may customise, ``fields.<name>`` in templates."""
    variants: dict[SegmentKey, VariantSpec] = Field(default_factory=dict)
    """Per-segment overrides, keyed by a key of ``segments``."""
    send_window: SendWindow | None = None
    """When touches may go out, in each partner's local time; none: at the cycle's time."""
    waves: list[WaveSpec] = Field(default_factory=list)
    """Partner regions whose touches go out some days later; none: everyone together."""
    tracking: TrackingSpec | None = None
    """Open and click tracking of email touches; none: both on."""
    touches: list[TouchSpec] = Field(min_length=1)

    @field_validator("cycle_days")
    @classmethod
    def _cycle_length(cls, days: int) -> int:
        if not CYCLE_DAYS_MIN <= days <= CYCLE_DAYS_MAX:
            raise _rule(
                f"cycle_days must be between {CYCLE_DAYS_MIN} and {CYCLE_DAYS_MAX}, got {days}"
            )
        return days

    @field_validator("locales")
    @classmethod
    def _locales_unique(cls, locales: list[str]) -> list[str]:
        _raise_violations(_repeats("locales", locales, "locale"))
        return locales

    @field_validator("default_locale")
    @classmethod
    def _default_locale_declared(cls, value: str, info: ValidationInfo) -> str:
        locales = info.data.get("locales")
        if locales is not None and value not in locales:
            raise _rule(f"default_locale {value!r} is not one of locales ({', '.join(locales)})")
        return value

    @field_validator("segments")
    @classmethod
    def _segments_unique(cls, segments: list[str]) -> list[str]:
        _raise_violations(_repeats("segments", segments, "segment"))
        return segments

    @field_validator("variables")
    @classmethod
    def _variables_cover_locales(cls, variables: dict[str, Any], info: ValidationInfo) -> Any:
        violations: list[Violation] = []
        for name, value in variables.items():
            if isinstance(value, Mapping):
                violations += _coverage(value, ("variables", name), info)
        _raise_violations(violations)
        return variables

    @field_validator("locked")
    @classmethod
    def _locked_zones(cls, locked: dict[str, Any], info: ValidationInfo) -> Any:
        violations: list[Violation] = []
        for name, value in locked.items():
            violations += _coverage(value, ("locked", name), info)
        _raise_violations(violations)
        return locked

    @field_validator("editable_fields")
    @classmethod
    def _field_defaults(cls, fields: dict[str, EditableField], info: ValidationInfo) -> Any:
        violations: list[Violation] = []
        for name, definition in fields.items():
            loc = ("editable_fields", name)
            if name in (info.data.get("locked") or {}):
                violations.append(
                    Violation(loc, f"{name!r} is both a locked zone and an editable field")
                )
            violations += _value_violations(definition, definition.default, (*loc, "default"), info)
        _raise_violations(violations)
        return fields

    @field_validator("variants")
    @classmethod
    def _variants_fit(cls, variants: dict[str, VariantSpec], info: ValidationInfo) -> Any:
        violations: list[Violation] = []
        for segment, variant in variants.items():
            violations += _variant_violations(segment, variant, info)
        _raise_violations(violations)
        return variants

    @field_validator("waves")
    @classmethod
    def _waves_distinct(cls, waves: list[WaveSpec]) -> list[WaveSpec]:
        violations: list[Violation] = []
        named: dict[str, int] = {}
        catch_all: int | None = None
        for index, wave in enumerate(waves):
            for position, region in enumerate(wave.regions):
                first = named.get(region.casefold())
                if first is not None:
                    violations.append(
                        Violation(
                            ("waves", index, "regions", position),
                            f"region {region!r} is already in waves[{first}] "
                            "(a partner's region belongs to one wave)",
                        )
                    )
                named.setdefault(region.casefold(), index)
            if wave.others:
                if catch_all is not None:
                    violations.append(
                        Violation(
                            ("waves", index, "others"),
                            f"waves[{catch_all}] is already the catch-all (others: true); "
                            "only one wave can be",
                        )
                    )
                catch_all = index if catch_all is None else catch_all
        _raise_violations(violations)
        return waves

    @field_validator("touches")
    @classmethod
    def _touches_fit(cls, touches: list[TouchSpec], info: ValidationInfo) -> Any:
        violations: list[Violation] = []
        first_index: dict[str, int] = {}
        cycle_days = info.data.get("cycle_days")
        for index, touch in enumerate(touches):
            loc = ("touches", index)
            if touch.key in first_index:
                violations.append(
                    Violation(
                        (*loc, "key"),
                        f"duplicate touch key {touch.key!r} "
                        f"(already used by touches[{first_index[touch.key]}])",
                    )
                )
            first_index.setdefault(touch.key, index)
            if cycle_days is not None and touch.day > cycle_days:
                violations.append(
                    Violation(
                        (*loc, "day"),
                        f"touch {touch.key!r} day {touch.day} is outside the cycle "
                        f"(1 to {cycle_days})",
                    )
                )
            for part in ("subject", "preheader"):
                value = getattr(touch, part)
                if value is not None:
                    violations += _coverage(value, (*loc, part), info)
            if cycle_days is not None and touch.day <= cycle_days:
                violations += _timing_violations(index, touch, cycle_days, info)
        _raise_violations(violations)
        return touches

    # --- conveniences for readers of a spec ---

    def touch(self, key: str) -> TouchSpec:
        """The touch named ``key`` (KeyError if there is none)."""
        for touch in self.touches:
            if touch.key == key:
                return touch
        raise KeyError(key)

    def variant(self, segment_key: str) -> VariantSpec | None:
        """The overrides for partners of ``segment_key``, if the campaign has any."""
        return self.variants.get(segment_key)

    def window_for(self, touch: TouchSpec) -> SendWindow | None:
        """The send window of ``touch``: its own, else the campaign's, else none."""
        return touch.send_window or self.send_window

    def wave_for(self, region: str) -> tuple[int, WaveSpec] | None:
        """The wave (index, wave) of a partner in ``region``; None without a matching wave.

        The first wave naming the region (case-insensitive), else the catch-all wave.
        """
        wanted = region.strip().casefold()
        for index, wave in enumerate(self.waves):
            if wanted and any(wanted == name.casefold() for name in wave.regions):
                return index, wave
        for index, wave in enumerate(self.waves):
            if wave.others:
                return index, wave
        return None


def _repeats(field: str, values: list[str], noun: str) -> list[Violation]:
    seen: set[str] = set()
    violations = []
    for index, value in enumerate(values):
        if value in seen:
            violations.append(Violation((field, index), f"{noun} {value!r} is listed twice"))
        seen.add(value)
    return violations


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _coverage(value: Any, loc: Loc, info: ValidationInfo) -> list[Violation]:
    """A localised mapping must name exactly the campaign's locales."""
    locales = info.data.get("locales")
    if locales is None or not isinstance(value, Mapping):
        return []
    violations = [
        Violation(loc, f"{_dotted(loc)} has no text for locale {locale!r}")
        for locale in locales
        if locale not in value
    ]
    violations += [
        Violation(
            (*loc, locale),
            f"{_dotted(loc)} has text for {locale!r}, which is not one of locales "
            f"({', '.join(locales)})",
        )
        for locale in value
        if locale not in locales
    ]
    return violations


def _value_violations(
    definition: EditableField, value: Any, loc: Loc, info: ValidationInfo
) -> list[Violation]:
    """A default (campaign or variant) must satisfy its field's own rules."""
    if isinstance(value, Mapping):
        if not definition.localizable:
            return [
                Violation(loc, f"{_dotted(loc)} cannot be localised for a {definition.type} field")
            ]
        violations = _coverage(value, loc, info)
        parts = [((*loc, locale), text) for locale, text in value.items()]
    else:
        violations, parts = [], [(loc, value)]
    for part_loc, text in parts:
        violations += [
            Violation(part_loc, f"{_dotted(part_loc)}: {problem}")
            for problem in definition.value_problems(text)
        ]
    return violations


def _variant_violations(
    segment: str, variant: VariantSpec, info: ValidationInfo
) -> list[Violation]:
    loc: Loc = ("variants", segment)
    violations: list[Violation] = []
    segments = info.data.get("segments")
    if segments is not None and segment not in segments:
        violations.append(
            Violation(loc, f"variant {segment!r} is not one of segments ({', '.join(segments)})")
        )
    variables = info.data.get("variables")
    for name, value in variant.variables.items():
        if variables is not None and name not in variables:
            violations.append(
                Violation(
                    (*loc, "variables", name),
                    f"variant {segment!r} overrides variable {name!r}, "
                    "which the campaign's variables do not define",
                )
            )
        if isinstance(value, Mapping):
            violations += _coverage(value, (*loc, "variables", name), info)
    fields = info.data.get("editable_fields")
    for name, value in variant.defaults.items():
        if fields is None:
            continue
        if name not in fields:
            violations.append(
                Violation(
                    (*loc, "defaults", name),
                    f"variant {segment!r} sets a default for {name!r}, which is not an "
                    "editable field",
                )
            )
            continue
        violations += _value_violations(fields[name], value, (*loc, "defaults", name), info)
    return violations


def window_slack_days(window: SendWindow) -> int:
    """The most days a window can move a touch later: the longest run of closed weekdays,
    plus one for a touch whose day's window has already closed."""
    allowed = window.weekdays
    longest = 0
    for first in range(len(WEEKDAYS)):
        run = 0
        while run < len(WEEKDAYS) and (first + run) % len(WEEKDAYS) not in allowed:
            run += 1
        longest = max(longest, run)
    return longest + 1


def _timing_violations(
    index: int, touch: TouchSpec, cycle_days: int, info: ValidationInfo
) -> list[Violation]:
    """Waves and send windows must not push a touch past the cycle's last day."""
    violations: list[Violation] = []
    waves: list[WaveSpec] = info.data.get("waves") or []
    for wave_index, wave in enumerate(waves):
        if touch.day + wave.offset_days > cycle_days:
            violations.append(
                Violation(
                    ("waves", wave_index, "offset_days"),
                    f"wave {wave.label()} moves touch {touch.key!r} (day {touch.day}) "
                    f"{wave.offset_days} days later, to day {touch.day + wave.offset_days}, "
                    f"after the cycle's {cycle_days} days",
                )
            )
    window = touch.send_window or info.data.get("send_window")
    latest = touch.day + max((wave.offset_days for wave in waves), default=0)
    if window is not None and latest <= cycle_days:
        slack = window_slack_days(window)
        if latest + slack > cycle_days:
            where = " (in its last wave)" if waves else ""
            violations.append(
                Violation(
                    ("touches", index, "day"),
                    f"touch {touch.key!r} on day {latest}{where} may wait up to {slack} "
                    f"days for its send window ({window.describe()}), past the cycle's "
                    f"{cycle_days} days; give it day {cycle_days - slack - latest + touch.day} "
                    "or earlier",
                )
            )
    return violations
