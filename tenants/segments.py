"""Segments: named rules over partner fields, loaded from YAML, evaluated per tenant.

A segments file looks like::

    segments:
      gold-emea:
        name: Gold partners in EMEA
        rule:
          all:
            - {field: tier, eq: gold}
            - {field: region, eq: EMEA}

The rule language is in :mod:`partnercast.tenants.rules`. Every problem of a file is
reported at once, each with its ``file:line`` (found from the YAML node marks). Loading
upserts by key and leaves segments the file does not name alone.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from partnercast.core.errors import NotFound, Problems, UserError
from partnercast.core.tenancy import session_tenant
from partnercast.core.yamlfile import MAX_YAML_BYTES, compose_bounded
from partnercast.tenants.csvfile import read_text
from partnercast.tenants.models import Partner, Segment
from partnercast.tenants.rules import Rule, build_rule, check_rule, parse_rule, partner_matches

__all__ = [
    "Rule",
    "load_segments_file",
    "parse_rule",
    "parse_segments_text",
    "partner_matches",
    "partner_segments",
    "segment_members",
    "segments_with_counts",
]

SEGMENT_KEYS = ("name", "rule")
_KEY_SHAPE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NAME_LIMIT = 200

Path_ = tuple[str | int, ...]


def parse_segments_text(text: str, source: str) -> list[tuple[str, str, Rule]]:
    """``(key, name, rule)`` for each segment of a YAML document, in file order.

    ``source`` names the file in messages (``segments.yaml:7: ...``).
    """
    try:
        node, data = compose_bounded(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(error, "problem", None) or str(error)
        raise UserError(f"not valid YAML: {problem}", where=where) from None
    lines: dict[Path_, int] = {}
    problems: list[str] = []
    if node is not None:
        _index_lines(node, (), lines, problems, source)

    def report(path: Path_, message: str) -> None:
        problems.append(f"{source}:{_line_of(path, lines)}: {message}")

    segments = _check_document(data, report)
    if problems:
        raise Problems(problems, subject=source)
    return [(key, name, build_rule(rule)) for key, name, rule in segments]


def _check_document(data: Any, report: Any) -> list[tuple[str, str, Any]]:
    if not isinstance(data, dict) or "segments" not in data:
        report((), "expected a mapping with a 'segments' key")
        return []
    for key in data:
        if key != "segments":
            report((key,), f"unknown top-level key {key!r} (known: segments)")
    entries = data["segments"]
    if not isinstance(entries, dict) or not entries:
        report(("segments",), "'segments' needs a mapping of segment keys to segments")
        return []
    found: list[tuple[str, str, Any]] = []
    for key, entry in entries.items():
        path: Path_ = ("segments", key)
        if not isinstance(key, str) or not _KEY_SHAPE.fullmatch(key):
            report(path, f"segment key {key!r} must be lower-case letters, digits, - or _")
            continue
        if not isinstance(entry, dict):
            report(path, f"segment {key!r} needs a mapping with a rule")
            continue
        for extra in entry:
            if extra not in SEGMENT_KEYS:
                known = ", ".join(SEGMENT_KEYS)
                report((*path, extra), f"unknown key {extra!r} in segment {key!r} (known: {known})")
        name = entry.get("name", "")
        if not isinstance(name, str) or len(name) > _NAME_LIMIT:
            report((*path, "name"), f"name must be text of at most {_NAME_LIMIT} characters")
        if "rule" not in entry:
            report(path, f"segment {key!r} has no rule")
            continue
        rule = check_rule(entry["rule"], (*path, "rule"), report)
        found.append((key, name if isinstance(name, str) else "", rule))
    return found


def _index_lines(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[str], source: str
) -> None:
    """Record the line of every mapping key and list item; flag duplicate keys."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is None:
                continue
            if key in seen:
                # The YAML loader keeps the last value: index that one, flag the repeat.
                problems.append(
                    f"{source}:{line}: duplicate key {key!r} (first on line {seen[key]})"
                )
                stale = (*path, key)
                for known in [k for k in lines if k[: len(stale)] == stale]:
                    del lines[known]
            else:
                seen[key] = line
            lines[(*path, key)] = line
            _index_lines(value_node, (*path, key), lines, problems, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index_lines(item, (*path, index), lines, problems, source)


def _line_of(path: Path_, lines: dict[Path_, int]) -> int:
    """The line of ``path``, or of its nearest ancestor that has one."""
    while path:
        normal = tuple(part if isinstance(part, int) else str(part) for part in path)
        if normal in lines:
            return lines[normal]
        path = path[:-1]
    return lines.get((), 1)


def load_segments_file(session: Session, path: str | Path, *, now: datetime) -> list[Segment]:
    """Create or update the session's tenant's segments from a YAML file (new ones are
    created ``now``).

    Nothing is written unless the whole file is valid. Loading the same file again
    changes nothing; segments the file does not name are kept.
    """
    session_tenant(session)
    file_path = Path(path)
    parsed = parse_segments_text(read_text(file_path, limit=MAX_YAML_BYTES), str(path))
    existing = {segment.key: segment for segment in session.exec(select(Segment)).all()}
    loaded: list[Segment] = []
    for key, name, rule in parsed:
        data = rule.to_data()
        segment = existing.get(key)
        if segment is None:
            segment = Segment(key=key, name=name, rule=data, created_at=now)
            session.add(segment)
        else:
            if segment.name != name:
                segment.name = name
            if segment.rule != data:
                segment.rule = data
        loaded.append(segment)
    session.flush()
    return loaded


def get_segment(session: Session, key: str) -> Segment:
    """The tenant's segment ``key``, or NotFound."""
    segment = session.exec(select(Segment).where(Segment.key == key)).first()
    if segment is None:
        raise NotFound(f"no segment {key!r}")
    return segment


def segment_members(session: Session, key: str) -> list[Partner]:
    """The tenant's partners in segment ``key``, by external id."""
    session_tenant(session)
    rule = parse_rule(get_segment(session, key).rule)
    partners = session.exec(select(Partner).order_by(Partner.external_id)).all()
    return [partner for partner in partners if partner_matches(rule, partner)]


def partner_segments(session: Session, partner: Partner) -> list[str]:
    """The keys of the tenant's segments ``partner`` is in, in key order."""
    session_tenant(session)
    segments = session.exec(select(Segment).order_by(Segment.key)).all()
    return [s.key for s in segments if partner_matches(parse_rule(s.rule), partner)]


def segments_with_counts(session: Session) -> list[tuple[Segment, int]]:
    """Every segment of the tenant with its member count, in key order."""
    session_tenant(session)
    partners = session.exec(select(Partner)).all()
    segments = session.exec(select(Segment).order_by(Segment.key)).all()
    counted: list[tuple[Segment, int]] = []
    for segment in segments:
        rule = parse_rule(segment.rule)
        counted.append((segment, sum(partner_matches(rule, p) for p in partners)))
    return counted
