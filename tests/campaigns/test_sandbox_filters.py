"""Every built-in Jinja filter works inside the sandbox, as it does in plain Jinja."""

from __future__ import annotations

import pytest
from jinja2 import Environment, StrictUndefined
from jinja2.defaults import DEFAULT_FILTERS

from partnercast.campaigns.sandbox import render_limited, template_environment

# One use of each built-in filter (with its size and width arguments where it has them).
USES = {
    "abs": "{{ -3|abs }}",
    "attr": "{{ 2|attr('real') }}",
    "batch": "{{ [1, 2, 3]|batch(2, 0)|list }}",
    "capitalize": "{{ 'hello'|capitalize }}",
    "center": "{{ 'hi'|center(8) }}|",
    "count": "{{ [1, 2]|count }}",
    "d": "{{ missing|d('fallback') }}",
    "default": "{{ missing|default('fallback') }}",
    "dictsort": "{{ {'b': 1, 'a': 2}|dictsort }}",
    "e": "{{ '<b>'|e }}",
    "escape": "{{ '<b>'|escape }}",
    "filesizeformat": "{{ 123456789|filesizeformat }}",
    "first": "{{ [4, 5]|first }}",
    "float": "{{ '2.5'|float }}",
    "forceescape": "{{ '<b>'|forceescape }}",
    "format": "{{ '%s, %05.1f'|format('a', 2.25) }}",
    "groupby": "{% for g in [{'k': 1}, {'k': 1}]|groupby('k') %}{{ g.grouper }}{% endfor %}",
    "indent": "{{ 'a\nb\nc'|indent(3, first=true) }}",
    "int": "{{ '42'|int }}",
    "items": "{{ {'a': 1}|items|list }}",
    "join": "{{ [1, 2, 3]|join(', ') }}",
    "last": "{{ [4, 5]|last }}",
    "length": "{{ 'abc'|length }}",
    "list": "{{ 'ab'|list }}",
    "lower": "{{ 'AB'|lower }}",
    "map": "{{ ['a', 'b']|map('upper')|join }}",
    "max": "{{ [3, 9, 4]|max }}",
    "min": "{{ [3, 9, 4]|min }}",
    "pprint": "{{ {'a': [1, 2]}|pprint }}",
    "random": "{{ [7]|random }}",
    "reject": "{{ [1, 2, 3]|reject('odd')|list }}",
    "rejectattr": "{{ [{'x': 1}, {'x': 0}]|rejectattr('x')|list }}",
    "replace": "{{ 'a-b-c'|replace('-', '+', 1) }}",
    "reverse": "{{ 'abc'|reverse }}",
    "round": "{{ 2.567|round(2) }} {{ 2.5|round(0, 'floor') }}",
    "safe": "{{ '<b>'|safe }}",
    "select": "{{ [1, 2, 3]|select('odd')|list }}",
    "selectattr": "{{ [{'x': 1}, {'x': 0}]|selectattr('x')|list }}",
    "slice": "{{ [1, 2, 3]|slice(2, 0)|list }}",
    "sort": "{{ [3, 1, 2]|sort(reverse=true) }}",
    "string": "{{ 12|string }}",
    "striptags": "{{ '<p>a  <b>b</b></p>'|striptags }}",
    "sum": "{{ [1, 2, 3]|sum(start=10) }}",
    "title": "{{ 'hello world'|title }}",
    "tojson": "{{ {'a': '<x>'}|tojson }}",
    "trim": "{{ '  a  '|trim }}|",
    "truncate": "{{ 'the quick brown fox jumps'|truncate(12) }}",
    "unique": "{{ [1, 1, 2]|unique|list }}",
    "upper": "{{ 'ab'|upper }}",
    "urlencode": "{{ {'q': 'a b'}|urlencode }}",
    "urlize": "{{ 'see https://example.com now'|urlize }}",
    "wordcount": "{{ 'a b c'|wordcount }}",
    "wordwrap": "{{ 'the quick brown fox jumps over'|wordwrap(10) }}",
    "xmlattr": "<p{{ {'class': 'x'}|xmlattr }}>",
}


def test_every_built_in_filter_has_a_use() -> None:
    assert set(USES) == set(DEFAULT_FILTERS)


@pytest.mark.parametrize("autoescape", [True, False], ids=["html", "text"])
@pytest.mark.parametrize("name", sorted(USES))
def test_a_built_in_filter_renders_as_in_plain_jinja(name: str, autoescape: bool) -> None:
    source = USES[name]
    plain = Environment(autoescape=autoescape, undefined=StrictUndefined)
    expected = plain.from_string(source).render()
    templates = template_environment({"t.html": source}, autoescape=autoescape)
    assert render_limited(templates, "t.html", {}) == expected
