"""The segment rule language: declarative conditions over partner fields, never eval'd text.

A rule is one of::

    {all: [rule, ...]}          every sub-rule matches
    {any: [rule, ...]}          at least one sub-rule matches
    {not: rule}                 the sub-rule does not match
    {field: F, OP: VALUE}       one condition on a partner field

Fields: tier, region, status, time_zone (text), score (number), languages, tags (lists).
Operators: eq, ne, in, not_in (text and number fields); gt, gte, lt, lte (score);
contains, contains_any (list fields). Text compares case-insensitively. A language
without a territory also matches its regional forms: ``contains: de`` matches ``de_CH``.

:func:`check_rule` walks plain data (from YAML or JSON), reports every problem with its
path, and returns the normalised data; the pydantic models below are then built from it,
picking the model by which key the mapping has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, model_validator

from partnercast.core.errors import Problems
from partnercast.tenants import values
from partnercast.tenants.models import Partner

FieldName = Literal["tier", "region", "languages", "tags", "score", "status", "time_zone"]
Operator = Literal["eq", "ne", "in", "not_in", "contains", "contains_any", "gt", "gte", "lt", "lte"]
FIELDS: tuple[str, ...] = get_args(FieldName)
OPERATORS: tuple[str, ...] = get_args(Operator)
COMBINATORS = ("all", "any", "not")
LIST_FIELDS = ("languages", "tags")
NUMBER_FIELDS = ("score",)
LIST_OPERATORS = ("contains", "contains_any")
ORDER_OPERATORS = ("gt", "gte", "lt", "lte")
MULTI_OPERATORS = ("in", "not_in", "contains_any")

Path = tuple[str | int, ...]
Report = Callable[[Path, str], None]
Scalar = str | float


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Condition(_Frozen):
    """``{field: F, OP: VALUE}``: one test of one partner field."""

    field: FieldName
    op: Operator
    value: Scalar | tuple[Scalar, ...]

    @model_validator(mode="before")
    @classmethod
    def _from_yaml_shape(cls, data: Any) -> Any:
        """Accept ``{field: tier, eq: gold}`` as well as ``{field, op, value}``."""
        if isinstance(data, dict) and "op" not in data:
            operators = [key for key in data if key != "field"]
            if len(operators) == 1:
                return {"field": data.get("field"), "op": operators[0], "value": data[operators[0]]}
        return data

    def to_data(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"field": self.field, self.op: value}


class AllOf(_Frozen):
    """``{all: [...]}``: every sub-rule matches."""

    rules: tuple[Rule, ...] = Field(alias="all", min_length=1)

    def to_data(self) -> dict[str, Any]:
        return {"all": [rule.to_data() for rule in self.rules]}


class AnyOf(_Frozen):
    """``{any: [...]}``: at least one sub-rule matches."""

    rules: tuple[Rule, ...] = Field(alias="any", min_length=1)

    def to_data(self) -> dict[str, Any]:
        return {"any": [rule.to_data() for rule in self.rules]}


class NotOf(_Frozen):
    """``{not: rule}``: the sub-rule does not match."""

    rule: Rule = Field(alias="not")

    def to_data(self) -> dict[str, Any]:
        return {"not": self.rule.to_data()}


def _rule_kind(data: Any) -> str | None:
    """Which model a rule is: by the key its mapping has (or by its class)."""
    if isinstance(data, dict):
        return next((key for key in (*COMBINATORS, "field") if key in data), None)
    kinds: dict[type[Any], str] = {AllOf: "all", AnyOf: "any", NotOf: "not", Condition: "field"}
    return kinds.get(type(data))


Rule = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[Condition, Tag("field")],
    Discriminator(_rule_kind),
]
for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()
_RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


def parse_rule(data: Any) -> Rule:
    """A rule from plain data; every problem is reported at once as :class:`Problems`."""
    problems: list[str] = []

    def report(path: Path, message: str) -> None:
        problems.append(f"{format_path(path)}: {message}" if path else message)

    normal = check_rule(data, (), report)
    if problems:
        raise Problems(problems, subject="rule")
    return build_rule(normal)


def build_rule(checked: Any) -> Rule:
    """The model for data :func:`check_rule` accepted."""
    return _RULE.validate_python(checked)


def format_path(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def check_rule(data: Any, path: Path, report: Report) -> Any:
    """Check a rule, calling ``report`` for each problem; returns it normalised."""
    if not isinstance(data, dict) or not data:
        report(path, "a rule is a mapping with one of all, any, not or field")
        return None
    kinds = [key for key in COMBINATORS if key in data]
    if kinds:
        kind = kinds[0]
        extra = [key for key in data if key != kind]
        if extra:
            report((*path, extra[0]), f"{kind!r} cannot be combined with {extra[0]!r}")
            return None
        if kind == "not":
            return {"not": check_rule(data["not"], (*path, "not"), report)}
        items = data[kind]
        if not isinstance(items, list) or not items:
            report((*path, kind), f"{kind!r} needs a non-empty list of rules")
            return None
        return {kind: [check_rule(item, (*path, kind, i), report) for i, item in enumerate(items)]}
    if "field" not in data:
        key = next(iter(data))
        report((*path, key), f"unknown rule key {key!r} (known: {', '.join(COMBINATORS)}, field)")
        return None
    return _check_condition(data, path, report)


def _check_condition(data: dict[str, Any], path: Path, report: Report) -> Any:
    name = data["field"]
    if name not in FIELDS:
        report((*path, "field"), f"unknown field {name!r} (known: {', '.join(FIELDS)})")
        return None
    operators = [key for key in data if key != "field"]
    unknown = [key for key in operators if key not in OPERATORS]
    for key in unknown:
        report((*path, key), f"unknown operator {key!r} (known: {', '.join(OPERATORS)})")
    if unknown:
        return None
    if len(operators) != 1:
        found = ", ".join(operators) or "none"
        report(path, f"a condition needs exactly one operator (found: {found})")
        return None
    op = operators[0]
    where = (*path, op)
    if op in LIST_OPERATORS and name not in LIST_FIELDS:
        report(where, f"operator {op!r} applies only to {', '.join(LIST_FIELDS)}")
        return None
    if op in ORDER_OPERATORS and name not in NUMBER_FIELDS:
        report(where, f"operator {op!r} applies only to {', '.join(NUMBER_FIELDS)}")
        return None
    if name in LIST_FIELDS and op not in LIST_OPERATORS:
        report(where, f"operator {op!r} does not apply to list field {name!r} (use contains)")
        return None
    raw = data[op]
    if op in MULTI_OPERATORS:
        if not isinstance(raw, list) or not raw:
            report(where, f"{op!r} needs a non-empty list")
            return None
        checked = [_check_value(name, item, where, report) for item in raw]
        return {"field": name, op: checked}
    if isinstance(raw, list | dict):
        report(where, f"{op!r} needs a single value, not a {type(raw).__name__}")
        return None
    return {"field": name, op: _check_value(name, raw, where, report)}


def _check_value(name: str, raw: Any, where: Path, report: Report) -> Any:
    """One value compared with field ``name``, in the form partners store it."""
    if name in NUMBER_FIELDS:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            report(where, f"{name} compares with numbers, not {raw!r}")
            return None
        return float(raw)
    if not isinstance(raw, str):
        hint = " (quote it in YAML)" if isinstance(raw, bool | int | float) else ""
        report(where, f"{name} compares with text, not {raw!r}{hint}")
        return None
    try:
        if name == "tier":
            return values.one_of("tier", raw, values.TIERS)
        if name == "status":
            return values.one_of("status", raw, values.STATUSES)
        if name == "languages":
            return values.locale_id(raw)
        if name == "time_zone":
            return values.time_zone(raw)
    except values.BadValue as error:
        report(where, str(error))
        return None
    return raw.strip()


def partner_matches(rule: Rule, partner: Partner) -> bool:
    """Whether ``partner`` is in the segment the rule describes."""
    if isinstance(rule, AllOf):
        return all(partner_matches(sub, partner) for sub in rule.rules)
    if isinstance(rule, AnyOf):
        return any(partner_matches(sub, partner) for sub in rule.rules)
    if isinstance(rule, NotOf):
        return not partner_matches(rule.rule, partner)
    return _condition_holds(rule, getattr(partner, rule.field))


def _condition_holds(condition: Condition, actual: Any) -> bool:
    op, wanted = condition.op, condition.value
    if condition.field in LIST_FIELDS:
        items = list(actual or [])
        wanted_items = wanted if isinstance(wanted, tuple) else (wanted,)
        language = condition.field == "languages"
        return any(_item_in(str(item), items, language) for item in wanted_items)
    if condition.field in NUMBER_FIELDS:
        return _compare_numbers(op, float(actual or 0), wanted)
    text = _fold(actual)
    if op in ("in", "not_in"):
        listed = wanted if isinstance(wanted, tuple) else (wanted,)  # checked: a list
        found = text in {_fold(item) for item in listed}
        return found if op == "in" else not found
    return (text == _fold(wanted)) == (op == "eq")


def _compare_numbers(op: str, actual: float, wanted: Any) -> bool:
    if op in ("in", "not_in"):
        found = actual in wanted
        return found if op == "in" else not found
    comparisons: dict[str, Callable[[float, float], bool]] = {
        "eq": lambda a, b: a == b,
        "ne": lambda a, b: a != b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    return comparisons[op](actual, float(wanted))


def _item_in(wanted: str, items: list[Any], language: bool) -> bool:
    target = _fold(wanted)
    for item in items:
        have = _fold(item)
        if have == target or (language and "_" not in target and have.split("_")[0] == target):
            return True
    return False


def _fold(value: Any) -> str:
    return str(value).strip().casefold()
