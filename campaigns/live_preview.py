"""Every touch of an enrollment, on every channel, rendered for the partner portal from a
customisation that has not been saved yet, with each editable field's problems.

The portal sends what the partner has typed so far; :func:`live_preview` checks each
field on its own (:func:`partnercast.campaigns.customization.check_customization`, so the
problems are the ones saving would meet), renders every touch with the fields that pass
laid over the saved customisation (:func:`partnercast.campaigns.preview.preview_touch`,
the renderer ``partnercast preview`` and the send use), and says what each channel finds
wrong with the result (its ``validate``). Nothing is saved.

Each touch carries a fingerprint of its rendered content, so that a decision on one touch
can record (and check) exactly what the partner was shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from partnercast.campaigns import approval
from partnercast.campaigns.customization import check_customization
from partnercast.campaigns.decisions import content_fingerprint
from partnercast.campaigns.enrollment import enrollment_spec
from partnercast.campaigns.models import Enrollment
from partnercast.campaigns.preview import PreviewResult, preview_touch
from partnercast.campaigns.rendering import pick_locale
from partnercast.campaigns.spec import CampaignSpec, EditableField, TouchSpec, localize
from partnercast.core.errors import Problems, UserError
from partnercast.core.settings import Settings
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.tenants.models import Partner

KIND_BY_CHANNEL = {"email": "email", "x": "post", "linkedin": "post", "microsite": "page"}
"""How the portal shows a touch: an email (HTML and text), a post card, a page; every
other channel (search) as its own preview HTML (a search result)."""


@dataclass(frozen=True)
class FieldState:
    """One editable field as the form shows it: the value typed, its limits, its problems."""

    name: str
    label: str
    hint: str
    type: str
    value: str  # typed, else saved, else the campaign's default text
    default: str
    required: bool
    max_length: int | None
    choices: list[str] | None
    problems: list[str]

    @property
    def length(self) -> int:
        return len(self.value)


@dataclass(frozen=True)
class LockedZone:
    name: str
    text: str


@dataclass(frozen=True)
class TouchPreview:
    key: str
    channel: str
    channel_title: str
    kind: str  # email | post | page | other (KIND_BY_CHANNEL)
    day: int
    subject: str
    html: str
    text: str
    length: int | None  # a post's length as its network counts it (X: weighted)
    max_length: int | None
    problems: list[str]
    fingerprint: str  # of the rendered content shown
    declined: bool = False


@dataclass(frozen=True)
class LivePreview:
    locale: str
    fields: list[FieldState]
    locked: list[LockedZone]
    touches: list[TouchPreview]
    candidate: dict[str, Any]
    """The customisation the preview rendered: saved values with the passing typed ones."""
    saved_fingerprint: str
    """approval.fingerprint of the saved enrollment: what a decision on it is about."""
    problems: list[str] = field(default_factory=list)  # problems of no one field

    @property
    def ok(self) -> bool:
        """Nothing to fix: no field's problem, and no problem in a touch that goes out
        (one the partner declined does not)."""
        return (
            not self.problems
            and not any(f.problems for f in self.fields)
            and not any(t.problems for t in self.touches if not t.declined)
        )

    def touch(self, key: str) -> TouchPreview | None:
        return next((touch for touch in self.touches if touch.key == key), None)


def live_preview(
    session: Session,
    settings: Settings,
    enrollment: Enrollment,
    typed: Mapping[str, str] | None = None,
    *,
    locale: str | None = None,
    plugins: Plugins | None = None,
) -> LivePreview:
    """The enrollment's touches rendered with ``typed`` (field -> text, in ``locale``)
    over its saved customisation, and each field's problems. Nothing is saved."""
    spec = enrollment_spec(session, enrollment)
    partner = session.get(Partner, enrollment.partner_id)
    languages = partner.languages if partner is not None else []
    chosen = locale if locale in spec.locales else pick_locale("", spec, languages)
    candidate = dict(enrollment.customization)
    fields: list[FieldState] = []
    for name, definition in spec.editable_fields.items():
        saved = _text(localize(candidate.get(name), chosen, spec.default_locale))
        default = _text(localize(definition.default, chosen, spec.default_locale))
        shown = saved if name in candidate else default  # what the partner's words replace
        value = shown if typed is None or name not in typed else typed[name]
        problems: list[str] = []
        if typed is not None and name in typed:
            problems, merged = _check_field(
                spec, name, definition, candidate.get(name), value, chosen
            )
            if not problems:
                if merged is None:
                    candidate.pop(name, None)
                else:
                    candidate[name] = merged
        fields.append(_field_state(name, definition, value, problems, chosen, spec))
    loaded = plugins or default_plugins()
    touches = [
        _touch_preview(session, settings, enrollment, touch, chosen, candidate, loaded)
        for touch in spec.touches
    ]
    locked = [
        LockedZone(name, _text(localize(text, chosen, spec.default_locale)))
        for name, text in spec.locked.items()
    ]
    return LivePreview(
        locale=chosen,
        fields=fields,
        locked=locked,
        touches=touches,
        candidate=candidate,
        saved_fingerprint=approval.fingerprint(enrollment),
    )


def typed_customization(
    spec: CampaignSpec, saved: Mapping[str, Any], typed: Mapping[str, str], locale: str
) -> dict[str, Any]:
    """What saving ``typed`` (field -> text in ``locale``) would store, unchecked: the
    caller saves it through enrollment.customise, which checks every field."""
    values: dict[str, Any] = {}
    for name, text in typed.items():
        definition = spec.editable_fields.get(name)
        if definition is None:
            values[name] = text  # refused with its reason by the check
            continue
        merged = _merge(definition, saved.get(name), text, locale, spec)
        if merged is not None:
            values[name] = merged
    return values


def _merge(
    definition: EditableField, saved: Any, text: str, locale: str, spec: CampaignSpec
) -> Any:
    """The stored value after typing ``text`` in ``locale``; None: back to the default.

    A field saved per locale keeps its other locales; a bool field reads "true"/"on"."""
    if definition.type == "bool":
        return text.strip().lower() in ("true", "on", "1", "yes")
    if text.strip() == "":
        if isinstance(saved, Mapping):
            rest = {key: value for key, value in saved.items() if key != locale}
            return rest or None
        return None
    if isinstance(saved, Mapping) and len(spec.locales) > 1:
        return {**saved, locale: text}
    return text


def _check_field(
    spec: CampaignSpec,
    name: str,
    definition: EditableField,
    saved: Any,
    text: str,
    locale: str,
) -> tuple[list[str], Any]:
    merged = _merge(definition, saved, text, locale, spec)
    if merged is None:
        if definition.required and definition.default in (None, "", {}):
            return [f"field {name!r} is required"], None
        return [], None
    try:
        check_customization(spec, {name: merged})
    except Problems as problems:
        return [p for p in problems.problems if not p.endswith("is required")], merged
    return [], merged


def _field_state(
    name: str,
    definition: EditableField,
    value: str,
    problems: list[str],
    locale: str,
    spec: CampaignSpec,
) -> FieldState:
    return FieldState(
        name=name,
        label=definition.label or name,
        hint=definition.hint,
        type=definition.type,
        value=value,
        default=_text(localize(definition.default, locale, spec.default_locale)),
        required=definition.required,
        max_length=definition.max_length,
        choices=definition.choices,
        problems=[_without_field_name(name, problem) for problem in problems],
    )


def _without_field_name(name: str, problem: str) -> str:
    """'field 'headline': too long (...)' beside the headline field: 'too long (...)'."""
    prefix = f"field {name!r}: "
    return problem[len(prefix) :] if problem.startswith(prefix) else problem


def _touch_preview(
    session: Session,
    settings: Settings,
    enrollment: Enrollment,
    touch: TouchSpec,
    locale: str,
    customization: Mapping[str, Any],
    plugins: Plugins,
) -> TouchPreview:
    declined = touch.key in enrollment.declined_touches
    kind = KIND_BY_CHANNEL.get(touch.channel, "other")
    try:
        shown: PreviewResult = preview_touch(
            session,
            settings,
            enrollment,
            touch,
            locale,
            customization=customization,
            plugins=plugins,
        )
    except UserError as error:  # a template the partner's text cannot fix: say so, go on
        return TouchPreview(
            key=touch.key,
            channel=touch.channel,
            channel_title=touch.channel,
            kind=kind,
            day=touch.day,
            subject="",
            html="",
            text="",
            length=None,
            max_length=None,
            problems=[str(error)],
            fingerprint="",
            declined=declined,
        )
    length = shown.meta.get("length")
    maximum = shown.meta.get("max_length")
    return TouchPreview(
        key=touch.key,
        channel=touch.channel,
        channel_title=shown.channel_title or touch.channel,
        kind=kind,
        day=touch.day,
        subject=shown.subject,
        html=shown.html,
        text=shown.text,
        length=length if isinstance(length, int) else None,
        max_length=maximum if isinstance(maximum, int) else None,
        problems=list(shown.problems),
        fingerprint=touch_fingerprint(shown),
        declined=declined,
    )


def touch_fingerprint(shown: PreviewResult) -> str:
    """A fingerprint of one touch's rendered content as the partner sees it."""
    return content_fingerprint(
        {"subject": shown.subject, "html": shown.html, "text": shown.text, "locale": shown.locale}
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def current_texts(spec: CampaignSpec, saved: Mapping[str, Any], locale: str) -> dict[str, str]:
    """Each editable field's text in ``locale`` as the form shows it before any typing:
    the saved value, else the campaign's default."""
    texts = {}
    for name, definition in spec.editable_fields.items():
        value = saved.get(name, definition.default)
        texts[name] = _text(localize(value, locale, spec.default_locale))
    return texts


def changed_fields(
    spec: CampaignSpec, saved: Mapping[str, Any], typed: Mapping[str, str], locale: str
) -> dict[str, str]:
    """Of ``typed``, the editable fields whose text differs from what the form showed."""
    shown = current_texts(spec, saved, locale)
    return {
        name: text
        for name, text in typed.items()
        if name in spec.editable_fields and text.replace("\r\n", "\n") != shown[name]
    }
