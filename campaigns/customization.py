"""Checking a partner's customisation against the fields the campaign lets it edit.

Every problem names the field and the reason; locked zones and unknown fields are refused;
text fields may hold only the merge tokens the campaign allows for them (see
partner_text). A value may be one string for every locale or a mapping locale -> string.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlparse

from partnercast.campaigns.partner_text import template_syntax_problems
from partnercast.campaigns.spec import CampaignSpec, EditableField
from partnercast.core.errors import Problems


def check_customization(spec: CampaignSpec, values: dict[str, Any]) -> dict[str, Any]:
    """The cleaned customisation, or Problems listing every field that is wrong."""
    problems: list[str] = []
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        if name in spec.locked:
            problems.append(f"field {name!r} is a locked zone: partners cannot change it")
            continue
        definition = spec.editable_fields.get(name)
        if definition is None:
            editable = ", ".join(sorted(spec.editable_fields)) or "none"
            problems.append(
                f"field {name!r} is not editable in this campaign (editable: {editable})"
            )
            continue
        field_problems, clean = _check_value(spec, name, definition, value)
        problems.extend(field_problems)
        if not field_problems:
            cleaned[name] = clean
    problems.extend(_missing_required(spec, {**values}))
    if problems:
        raise Problems(problems, subject="the customisation")
    return cleaned


def _missing_required(spec: CampaignSpec, values: dict[str, Any]) -> list[str]:
    missing = []
    for name, definition in spec.editable_fields.items():
        if (
            definition.required
            and definition.default in (None, "", {})
            and values.get(name) in (None, "", {})
        ):
            missing.append(f"field {name!r} is required")
    return missing


def _check_value(
    spec: CampaignSpec, name: str, definition: EditableField, value: Any
) -> tuple[list[str], Any]:
    if definition.type in ("text", "url") and isinstance(value, dict):
        problems: list[str] = []
        for locale, text in value.items():
            if locale not in spec.locales:
                problems.append(
                    f"field {name!r}: locale {locale!r} is not one of the campaign's "
                    f"({', '.join(spec.locales)})"
                )
                continue
            problems.extend(
                f"{problem} ({locale})" for problem in _check_scalar(name, definition, text)
            )
        return problems, value
    problems = _check_scalar(name, definition, value)
    return problems, value


def _check_scalar(name: str, definition: EditableField, value: Any) -> list[str]:
    kind = definition.type
    if kind == "bool":
        return [] if isinstance(value, bool) else [f"field {name!r}: expected true or false"]
    if not isinstance(value, str):
        return [f"field {name!r}: expected text, got {type(value).__name__}"]
    if kind == "choice":
        choices = definition.choices or []
        if value not in choices:
            return [f"field {name!r}: {value!r} is not one of {', '.join(map(repr, choices))}"]
        return []
    if kind == "date":
        try:
            date.fromisoformat(value)
        except ValueError:
            return [f"field {name!r}: {value!r} is not a date (YYYY-MM-DD)"]
        return []
    if kind == "url":
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            return [f"field {name!r}: {value!r} is not an http(s) URL"]
        return []
    problems = []
    if definition.max_length is not None and len(value) > definition.max_length:
        problems.append(
            f"field {name!r}: too long ({len(value)} characters, at most {definition.max_length})"
        )
    problems.extend(
        f"field {name!r}: {problem}"
        for problem in template_syntax_problems(value, definition.merge_tokens or [])
    )
    return problems
