"""Segment rules: every operator, errors with file:line, loading, membership."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.errors import NotFound, Problems, UserError
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.importing import import_partners
from partnercast.tenants.models import Partner, Segment
from partnercast.tenants.segments import (
    load_segments_file,
    parse_rule,
    partner_matches,
    partner_segments,
    segment_members,
    segments_with_counts,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"

PARTNER = Partner(
    external_id="P1",
    name="Alpenrand IT",
    tier="gold",
    region="EMEA",
    languages=["de_CH", "en"],
    tags=["cloud", "Rising"],
    score=64.0,
    status="active",
    time_zone="Europe/Zurich",
    created_at=utcnow(),
    updated_at=utcnow(),
)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "tier", "eq": "gold"}, True),
        ({"field": "tier", "eq": "GOLD"}, True),
        ({"field": "tier", "eq": "silver"}, False),
        ({"field": "region", "eq": "emea"}, True),
        ({"field": "region", "ne": "EMEA"}, False),
        ({"field": "region", "ne": "NA"}, True),
        ({"field": "region", "in": ["NA", "EMEA"]}, True),
        ({"field": "region", "in": ["NA", "APAC"]}, False),
        ({"field": "status", "not_in": ["paused", "offboarded"]}, True),
        ({"field": "status", "not_in": ["active"]}, False),
        ({"field": "time_zone", "eq": "Europe/Zurich"}, True),
        ({"field": "tags", "contains": "rising"}, True),
        ({"field": "tags", "contains": "smb"}, False),
        ({"field": "tags", "contains_any": ["smb", "cloud"]}, True),
        ({"field": "tags", "contains_any": ["smb", "security"]}, False),
        ({"field": "languages", "contains": "de"}, True),  # de covers de_CH
        ({"field": "languages", "contains": "de_CH"}, True),
        ({"field": "languages", "contains": "de_DE"}, False),
        ({"field": "languages", "contains_any": ["fr", "en"]}, True),
        ({"field": "languages", "contains_any": ["fr", "it"]}, False),
        ({"field": "score", "gt": 64}, False),
        ({"field": "score", "gte": 64}, True),
        ({"field": "score", "lt": 64}, False),
        ({"field": "score", "lte": 64.0}, True),
        ({"field": "score", "eq": 64}, True),
        ({"field": "score", "ne": 64}, False),
        ({"field": "score", "in": [10, 64]}, True),
        ({"all": [{"field": "tier", "eq": "gold"}, {"field": "region", "eq": "EMEA"}]}, True),
        ({"all": [{"field": "tier", "eq": "gold"}, {"field": "region", "eq": "NA"}]}, False),
        ({"any": [{"field": "tier", "eq": "silver"}, {"field": "score", "gte": 60}]}, True),
        ({"any": [{"field": "tier", "eq": "silver"}, {"field": "score", "gte": 90}]}, False),
        ({"not": {"field": "tier", "eq": "gold"}}, False),
        ({"not": {"not": {"field": "tier", "eq": "gold"}}}, True),
    ],
)
def test_operator(rule, expected) -> None:
    assert partner_matches(parse_rule(rule), PARTNER) is expected


def test_rule_round_trips_through_its_stored_form() -> None:
    rule = parse_rule(
        {
            "any": [
                {"field": "languages", "contains_any": ["de-ch", "en"]},
                {"not": {"field": "score", "lt": 5}},
            ]
        }
    )
    assert rule.to_data() == {
        "any": [
            {"field": "languages", "contains_any": ["de_CH", "en"]},
            {"not": {"field": "score", "lt": 5.0}},
        ]
    }
    assert parse_rule(rule.to_data()) == rule


def test_every_problem_of_a_rule_is_reported_at_once() -> None:
    with pytest.raises(Problems) as raised:
        parse_rule(
            {
                "all": [
                    {"field": "teir", "eq": "gold"},
                    {"field": "tier", "equals": "gold"},
                    {"field": "tier", "eq": "gold", "ne": "silver"},
                    {"field": "tier", "eq": "platinum"},
                    {"field": "region", "gt": 3},
                    {"field": "tags", "eq": "x"},
                    {"field": "score", "contains": 3},
                    {"field": "score", "gte": "high"},
                    {"field": "region", "eq": False},
                    {"field": "region", "in": []},
                    {"field": "languages", "contains": "xx_YY"},
                    {"any": []},
                    {"some": []},
                    "tier == gold",
                ]
            }
        )
    assert raised.value.problems == [
        "all[0].field: unknown field 'teir' (known: tier, region, languages, tags, score, "
        "status, time_zone)",
        "all[1].equals: unknown operator 'equals' (known: eq, ne, in, not_in, contains, "
        "contains_any, gt, gte, lt, lte)",
        "all[2]: a condition needs exactly one operator (found: eq, ne)",
        "all[3].eq: tier 'platinum' is not one of gold, silver, registered",
        "all[4].gt: operator 'gt' applies only to score",
        "all[5].eq: operator 'eq' does not apply to list field 'tags' (use contains)",
        "all[6].contains: operator 'contains' applies only to languages, tags",
        "all[7].gte: score compares with numbers, not 'high'",
        "all[8].eq: region compares with text, not False (quote it in YAML)",
        "all[9].in: 'in' needs a non-empty list",
        "all[10].contains: unknown locale 'xx_YY'",
        "all[11].any: 'any' needs a non-empty list of rules",
        "all[12].some: unknown rule key 'some' (known: all, any, not, field)",
        "all[13]: a rule is a mapping with one of all, any, not or field",
    ]


BAD_FILE = """\
segments:
  gold-emea:
    name: Gold partners in EMEA
    rule:
      all:
        - {field: tier, eq: gold}
        - {field: teir, eq: gold}
        - field: region
          equals: EMEA
  silver-na:
    nmae: Silver
    rule: {all: [{field: tier, eq: silver}, {field: region, eq: no}]}
  Bad Key:
    rule: {field: tier, eq: gold}
  no-rule:
    name: nothing
"""


def test_file_problems_carry_file_and_line(engine, tenant_a, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("segments.yaml").write_text(BAD_FILE, encoding="utf-8")
    with tenant_session(engine, tenant_a) as session, pytest.raises(Problems) as raised:
        load_segments_file(session, "segments.yaml", now=utcnow())
    problems = raised.value.problems
    assert problems == [
        "segments.yaml:7: unknown field 'teir' (known: tier, region, languages, tags, score, "
        "status, time_zone)",
        "segments.yaml:9: unknown operator 'equals' (known: eq, ne, in, not_in, contains, "
        "contains_any, gt, gte, lt, lte)",
        "segments.yaml:11: unknown key 'nmae' in segment 'silver-na' (known: name, rule)",
        "segments.yaml:12: region compares with text, not False (quote it in YAML)",
        "segments.yaml:13: segment key 'Bad Key' must be lower-case letters, digits, - or _",
        "segments.yaml:15: segment 'no-rule' has no rule",
    ]
    assert str(raised.value).startswith("6 problems in segments.yaml:")
    with tenant_session(engine, tenant_a) as session:
        assert session.exec(select(Segment)).all() == []


def test_duplicate_keys_are_reported(engine, tenant_a, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("s.yaml").write_text(
        "segments:\n"
        "  top:\n"
        "    rule: {field: score, gte: 80}\n"
        "  top:\n"
        "    rule:\n"
        "      field: tier\n"
        "      eq: gold\n"
        "      eq: silver\n"
    )
    with tenant_session(engine, tenant_a) as session, pytest.raises(Problems) as raised:
        load_segments_file(session, "s.yaml", now=utcnow())
    assert raised.value.problems == [
        "s.yaml:4: duplicate key 'top' (first on line 2)",
        "s.yaml:8: duplicate key 'eq' (first on line 7)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("segments:\n  a: {rule: [\n", "segments.yaml:3: not valid YAML"),
        ("", "expected a mapping with a 'segments' key"),
        ("segments: {}\n", "'segments' needs a mapping"),
        (
            "segments:\n  a: {rule: {field: tier, eq: gold}}\nextra: 1\n",
            "segments.yaml:3: unknown top",
        ),
    ],
)
def test_bad_yaml_is_a_user_error(engine, tenant_a, tmp_path, monkeypatch, text, message) -> None:
    monkeypatch.chdir(tmp_path)
    Path("segments.yaml").write_text(text, encoding="utf-8")
    with tenant_session(engine, tenant_a) as session, pytest.raises(UserError) as raised:
        load_segments_file(session, "segments.yaml", now=utcnow())
    assert message in str(raised.value)


def test_missing_file_is_a_user_error(engine, tenant_a, tmp_path) -> None:
    with tenant_session(engine, tenant_a) as session, pytest.raises(UserError, match="no such"):
        load_segments_file(session, tmp_path / "nope.yaml", now=utcnow())


def load_examples(engine: Engine, tenant_id: int) -> list[Segment]:
    with tenant_session(engine, tenant_id) as session:
        import_partners(session, EXAMPLES / "partners.csv", now=utcnow())
        return load_segments_file(session, EXAMPLES / "segments.yaml", now=utcnow())


def test_loading_twice_changes_nothing_and_keeps_other_segments(engine, tenant_a, tmp_path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("segments:\n  paused:\n    rule: {field: status, eq: paused}\n")
    with tenant_session(engine, tenant_a) as session:
        load_segments_file(session, extra, now=utcnow())
    first = load_examples(engine, tenant_a)
    second = load_examples(engine, tenant_a)
    assert [s.key for s in first] == ["gold-emea", "silver-na", "registered-apac", "contenders"]
    assert [(s.id, s.rule, s.name) for s in second] == [(s.id, s.rule, s.name) for s in first]
    with tenant_session(engine, tenant_a) as session:
        keys = sorted(s.key for s in session.exec(select(Segment)).all())
    assert keys == ["contenders", "gold-emea", "paused", "registered-apac", "silver-na"]


def test_loading_a_changed_rule_updates_it(engine, tenant_a, tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("segments:\n  top:\n    rule: {field: score, gte: 80}\n")
    with tenant_session(engine, tenant_a) as session:
        (old,) = load_segments_file(session, path, now=utcnow())
    path.write_text("segments:\n  top:\n    name: Top\n    rule: {field: score, gte: 70}\n")
    with tenant_session(engine, tenant_a) as session:
        (new,) = load_segments_file(session, path, now=utcnow())
    assert new.id == old.id
    assert (new.name, new.rule) == ("Top", {"field": "score", "gte": 70.0})


def test_members_and_partner_segments(engine, tenant_a) -> None:
    load_examples(engine, tenant_a)
    with tenant_session(engine, tenant_a) as session:
        members = {
            key: [p.external_id for p in segment_members(session, key)]
            for key in ("gold-emea", "silver-na", "registered-apac", "contenders")
        }
        alpenrand = session.exec(select(Partner).where(Partner.external_id == "P1002")).one()
        keys = partner_segments(session, alpenrand)
        counts = {s.key: n for s, n in segments_with_counts(session)}
    assert members == {
        "gold-emea": ["P1001", "P1002", "P1003"],
        "silver-na": ["P2001", "P2002", "P2003"],
        "registered-apac": ["P3001", "P3002"],
        "contenders": ["P1001", "P1002", "P1003", "P2002", "P3002"],
    }
    assert keys == ["contenders", "gold-emea"]
    assert counts == {key: len(value) for key, value in members.items()}


def test_unknown_segment_is_not_found(engine, tenant_a) -> None:
    with tenant_session(engine, tenant_a) as session, pytest.raises(NotFound, match="'nope'"):
        segment_members(session, "nope")
