"""Reading a campaign folder (campaign-as-code) and reporting every problem in it at once.

A campaign folder holds ``campaign.yaml`` (see :mod:`partnercast.campaigns.spec`) and
``templates/`` with one file per touch template and locale,
``templates/<template>.<locale><suffix>`` (the suffix is the channel's: ``.mjml`` for
email), plus partials whose file name starts with ``_`` (no locale) that templates include.

:func:`read_campaign` checks everything it can and raises one :class:`Problems` listing
each problem as ``file:line: message``: YAML syntax and duplicate keys, the spec's rules
(lines found by mapping pydantic's error paths back onto the YAML nodes), Jinja syntax,
references to names the renderer does not provide, touches without a template for a
locale, and each channel's own rules, through the Channel contract: what its templates
must show (``template_must_show``: email's unsubscribe link, legal name and postal
address) and what its touches need (``check_touch``: email's subject). A campaign that
passes all that is rendered for a sample partner (every touch, locale and variant), so
that a template that breaks only when rendered or compiled is refused too.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ValidationError
from rapidfuzz import fuzz, process

from partnercast.campaigns.sample_render import sample_render
from partnercast.campaigns.spec import (
    CAMPAIGN_RULE,
    CampaignSpec,
    EditableField,
    Loc,
    SendWindow,
    TouchSpec,
    VariantSpec,
    WaveSpec,
    localize,
    localized_parts,
)
from partnercast.campaigns.template_syntax import unclosed_block
from partnercast.core.boundedread import read_bounded
from partnercast.core.errors import Problems, UserError
from partnercast.core.yamlfile import BoundedLoader
from partnercast.plugins import Channel

SPEC_FILE = "campaign.yaml"
TEMPLATES_DIR = "templates"
MAX_FILE_BYTES = 1_000_000
IGNORED_FILES = frozenset({"Thumbs.db", "desktop.ini", "__pycache__"})

# What the renderer puts in a template's context (campaigns.rendering.layered_context).
# vars, fields and locked hold the campaign's own names; locale is a plain string.
FIXED_NAMESPACES: Mapping[str, frozenset[str]] = {
    "brand": frozenset(
        {
            "name",
            "legal_name",
            "postal_address",
            "logo_url",
            "primary_color",
            "secondary_color",
            "signature",
        }
    ),
    "partner": frozenset({"name", "contact_name", "contact_email", "region", "tier"}),
    "campaign": frozenset({"key", "name"}),
    "contact": frozenset({"first_name", "last_name", "company", "email"}),
    "links": frozenset({"unsubscribe"}),
    "touch": frozenset({"key", "day"}),
}
CAMPAIGN_NAMESPACES = {
    "vars": "a variable",
    "fields": "an editable field",
    "locked": "a locked zone",
}
CONTEXT_NAMES = frozenset({*FIXED_NAMESPACES, *CAMPAIGN_NAMESPACES, "locale"})
# Names Jinja itself provides inside loops, macros and call blocks.
JINJA_IMPLICIT = frozenset({"loop", "caller", "varargs", "kwargs", "self", "super"})
ChannelSpec = type[Channel] | str
"""A channel as the loader knows it: its class (suffix, rules), or just its suffix."""


@dataclass(frozen=True)
class LoadedCampaign:
    """A checked campaign folder: its spec, template sources and content hash.

    ``templates`` is keyed by path relative to ``templates/`` (``email/intro.en.mjml``),
    with line endings normalised, so ``content_hash`` is the same on every machine for an
    unchanged folder.
    """

    folder: Path
    spec: CampaignSpec
    templates: dict[str, str]
    content_hash: str
    warnings: tuple[str, ...] = ()
    """``file:line: message`` of what the channels warn about; none refuse the campaign."""


def read_campaign(
    folder: Path,
    channels: Mapping[str, ChannelSpec],
    channel_contents: Mapping[str, type[BaseModel]] | None = None,
    *,
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> LoadedCampaign:
    """Read and check the campaign in ``folder``; raise Problems listing everything wrong.

    ``channels`` maps each known channel's name to its Channel class (the installed ones:
    ``partnercast.plugins.manager.installed_channels()``), whose template suffix and own
    rules apply, or to a bare template file suffix (``{"email": ".mjml"}``: no channel
    rules). ``channel_contents`` optionally maps channel names to their Content models,
    so that each touch's content is checked, locale by locale, with the line it is on. A
    missing folder or ``campaign.yaml`` is a UserError.

    A campaign without such problems is then rendered for a sample partner, every touch
    in every locale and variant (:mod:`partnercast.campaigns.sample_render`), with the
    plugins' template ``filters``: what fails only when rendered is a problem too, and
    what a channel only warns about (an unknown MJML tag) is in ``warnings``.
    """
    channel_suffixes = {
        name: known if isinstance(known, str) else known.template_suffix
        for name, known in channels.items()
    }
    classes = {name: known for name, known in channels.items() if not isinstance(known, str)}
    spec_path = _spec_path(folder)
    report = _Report()
    root, data = _read_yaml(spec_path, report)
    spec = _validate_spec(data, root, report) if data is not None else None
    templates = _read_templates(folder / TEMPLATES_DIR, channel_suffixes, report)
    names = _campaign_names(spec, data)
    _TemplateChecker(templates, spec, names, root, classes, channel_suffixes, report).check()
    if spec is not None and root is not None:
        _check_touches(spec, root, templates, channel_suffixes, classes, report)
        _check_touch_content(spec, root, channel_contents or {}, report)
    warnings = _Report()
    if spec is not None and root is not None and not report.problems:
        # Only a campaign that reads cleanly is rendered: a template that does not parse
        # would fail again, in other words.
        for found in sample_render(
            spec,
            templates,
            classes,
            channel_suffixes,
            touch_line=lambda index: _line_of(root, ("touches", index)),
            filters=filters,
        ):
            (warnings if found.warning else report).add(found.file, found.line, found.message)
    if report.problems or spec is None:
        raise Problems(report.lines(), subject=str(folder))
    return LoadedCampaign(
        folder, spec, templates, content_hash(spec, templates), tuple(warnings.lines())
    )


def content_hash(spec: CampaignSpec, templates: Mapping[str, str]) -> str:
    """sha256 over a canonical JSON of the spec and every template source.

    Keys added to the format later (``send_window``, ``waves``) are left out while they
    hold their default, so a campaign that does not use them keeps the hash it had
    before they existed and reloading it adds no version.
    """
    payload = {"spec": _hashed_spec(spec), "templates": dict(sorted(templates.items()))}
    canonical = json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


LATER_KEYS: Mapping[str, Any] = {"send_window": None, "waves": [], "tracking": None}
"""Campaign keys added after the first stored versions, with their defaults."""
LATER_TOUCH_KEYS: Mapping[str, Any] = {"send_window": None}


def _hashed_spec(spec: CampaignSpec) -> dict[str, Any]:
    dumped = spec.model_dump(mode="json")
    for key, default in LATER_KEYS.items():
        if dumped.get(key) == default:
            dumped.pop(key, None)
    for touch in dumped.get("touches", []):
        for key, default in LATER_TOUCH_KEYS.items():
            if touch.get(key) == default:
                touch.pop(key, None)
    return dumped


# --- problems -----------------------------------------------------------------------------


@dataclass
class _Report:
    problems: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, file: str, line: int | None, message: str) -> None:
        self.problems.append((file, line or 0, message))

    def lines(self) -> list[str]:
        ordered = sorted(
            dict.fromkeys(self.problems), key=lambda p: (p[0] != SPEC_FILE, p[0], p[1])
        )
        return [
            f"{file}:{line}: {msg}" if line else f"{file}: {msg}" for file, line, msg in ordered
        ]


def _spec_path(folder: Path) -> Path:
    if not folder.exists():
        raise UserError("no such campaign folder", where=str(folder))
    if not folder.is_dir():
        raise UserError(
            "not a folder (a campaign is a folder with campaign.yaml)", where=str(folder)
        )
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise UserError(f"no {SPEC_FILE} in the campaign folder", where=str(folder))
    return spec_path


def _read_text(path: Path, name: str, report: _Report) -> str | None:
    """A file's text (UTF-8, line endings normalised), or None with a problem."""
    try:
        # A regular file, and no more than the limit of it: a template that is a named
        # pipe, a device or grows while read is a problem, not a read that never ends.
        data = read_bounded(path, MAX_FILE_BYTES)
    except UserError as error:
        why = error.message
        report.add(name, None, f"file is {why}" if why.startswith("larger") else why)
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        report.add(name, None, f"not UTF-8 text ({error.reason} at byte {error.start})")
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- campaign.yaml ------------------------------------------------------------------------


class _CampaignYaml(BoundedLoader):
    """SafeLoader (no aliases, bounded nesting: core/yamlfile.py) with YAML 1.2 scalars:
    no implicit dates, only true/false are booleans, no base-60 integers.

    (YAML 1.1 reads ``no`` as false, which is Norwegian's locale id, turns
    ``2025-03-01`` into a date object where a date field wants text, and ``11:00`` into
    the number 660 where a send window wants a time of day.)
    """


_CampaignYaml.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CampaignYaml.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CampaignYaml.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def _read_yaml(path: Path, report: _Report) -> tuple[yaml.Node | None, dict[str, Any] | None]:
    """The composed node tree (for line numbers) and the data, or Nones with problems."""
    text = _read_text(path, SPEC_FILE, report)
    if text is None:
        return None, None
    try:
        loader = _CampaignYaml(text)  # a NUL byte is refused here
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        report.add(SPEC_FILE, line, f"invalid YAML: {str(error).splitlines()[0]}")
        return None, None
    try:
        root = loader.get_single_node()
        if root is None:
            report.add(SPEC_FILE, None, "the file is empty")
            return None, None
        duplicates = _duplicate_keys(root)
        for line, message in duplicates:
            report.add(SPEC_FILE, line, message)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        report.add(SPEC_FILE, mark.line + 1 if mark else None, f"invalid YAML: {error.problem}")
        return None, None
    except yaml.YAMLError as error:
        report.add(SPEC_FILE, None, f"invalid YAML: {error}")
        return None, None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        report.add(SPEC_FILE, root.start_mark.line + 1, "must be a mapping (key: ..., name: ...)")
        return None, None
    return root, data


def _duplicate_keys(root: yaml.Node) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    seen_nodes: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in first_line:
                        found.append(
                            (
                                line,
                                f"duplicate key {key.value!r} "
                                f"(first at line {first_line[key.value]})",
                            )
                        )
                    first_line.setdefault(key.value, line)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return found


def _line_of(root: yaml.Node, loc: Loc) -> int:
    """The line of the YAML node at a pydantic ``loc`` (the deepest part that exists).

    For a mapping entry the key's line is used: with a block value it is the line that
    names what is wrong.
    """
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(node, yaml.MappingNode):
            entry = _entry(node, str(part))
            if entry is None:
                return line
            line = entry[0].start_mark.line + 1
            node = entry[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _entry(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    matches = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
    return matches[-1] if matches else None


def _validate_spec(
    data: dict[str, Any], root: yaml.Node | None, report: _Report
) -> CampaignSpec | None:
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as error:
        for problem_loc, message in _spec_errors(error):
            report.add(SPEC_FILE, _line_of(root, problem_loc) if root else None, message)
        return None


def _spec_errors(error: ValidationError) -> Iterator[tuple[Loc, str]]:
    for detail in error.errors():
        loc = tuple(detail["loc"])
        ctx = detail.get("ctx") or {}
        if detail["type"] == CAMPAIGN_RULE and "violations" in ctx:
            yield from ((tuple(v_loc), message) for v_loc, message in ctx["violations"])
        elif detail["type"] == CAMPAIGN_RULE:
            yield loc, ctx.get("message", detail["msg"])
        else:
            yield loc, _friendly(detail, loc)


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _friendly(detail: Any, loc: Loc) -> str:
    """Pydantic's error in the words of a campaign.yaml author."""
    kind, ctx, value = detail["type"], detail.get("ctx") or {}, detail.get("input")
    path = _dotted(loc)
    if loc and loc[-1] == "[key]":
        return f"{_dotted(loc[:-2]) or 'campaign'}: {ctx.get('message', detail['msg'])}"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        parent = _dotted(loc[:-1])
        return f"{parent} needs {loc[-1]!r}" if parent else f"missing required key {loc[-1]!r}"
    simple = {
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "bool_type": "must be true or false",
        "string_type": "must be text",
        "list_type": "must be a list",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
    }
    if kind in simple:
        return f"{path} {simple[kind]}, got {_shown(value)}"
    if kind == "literal_error":
        return f"{path} must be one of {ctx.get('expected')}, got {_shown(value)}"
    if kind == "too_short":
        return f"{path} must not be empty"
    if kind == "string_too_short":
        return f"{path} must not be empty"
    if kind == "string_too_long":
        return f"{path} must be at most {ctx.get('max_length')} characters"
    return f"{path}: {ctx.get('message', detail['msg'])}"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    parent = _dotted(loc[:-1])
    model = _model_at(loc[:-1])
    where = f" in {parent}" if parent else ""
    hint = ""
    if model is not None:
        close = difflib.get_close_matches(key, list(model.model_fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{where}{hint}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    shapes: dict[tuple[str, int], type[BaseModel]] = {
        ("editable_fields", 2): EditableField,
        ("variants", 2): VariantSpec,
        ("touches", 2): TouchSpec,
        ("touches", 3): SendWindow,
        ("send_window", 1): SendWindow,
        ("waves", 2): WaveSpec,
    }
    if not loc:
        return CampaignSpec
    return shapes.get((str(loc[0]), len(loc)))


def _campaign_names(
    spec: CampaignSpec | None, data: Mapping[str, Any] | None
) -> dict[str, frozenset[str]]:
    """Names templates may use under vars, fields and locked.

    From the spec when it is valid, else from whatever sections of the raw YAML are
    mappings, so template references are checked even while campaign.yaml has problems.
    """
    sections = {"vars": "variables", "fields": "editable_fields", "locked": "locked"}
    if spec is not None:
        return {ns: frozenset(getattr(spec, section)) for ns, section in sections.items()}
    names: dict[str, frozenset[str]] = {}
    if data is None:
        return names
    for namespace, section in sections.items():
        value = data.get(section, {})
        if isinstance(value, Mapping):
            names[namespace] = frozenset(str(key) for key in value)
    return names


# --- templates/ ---------------------------------------------------------------------------


def _read_templates(
    folder: Path, channel_suffixes: Mapping[str, str], report: _Report
) -> dict[str, str]:
    """Every template source under ``folder``, keyed by its path relative to it."""
    templates: dict[str, str] = {}
    if not folder.is_dir():
        report.add(f"{TEMPLATES_DIR}/", None, "the templates folder is missing")
        return templates
    suffixes = sorted(set(channel_suffixes.values()))
    for path in _template_files(folder, report):
        relative = unicodedata.normalize("NFC", path.relative_to(folder).as_posix())
        name = f"{TEMPLATES_DIR}/{relative}"
        if not any(relative.endswith(suffix) for suffix in suffixes):
            known = ", ".join(suffixes) or "none"
            report.add(name, None, f"not a template of a known channel (suffixes: {known})")
            continue
        text = _read_text(path, name, report)
        if text is not None:
            templates[relative] = text
    return dict(sorted(templates.items()))


def _template_files(folder: Path, report: _Report) -> Iterator[Path]:
    """Plain files under ``folder``, skipping hidden and OS clutter files; no symlinks."""
    for current, dirs, files in os.walk(folder, followlinks=False):
        base = Path(current)
        dirs[:] = sorted(d for d in dirs if not _ignored(d))
        for entry in [*dirs, *sorted(files)]:
            path = base / entry
            if path.is_symlink():
                relative = path.relative_to(folder.parent).as_posix()
                report.add(
                    relative, None, "is a symbolic link; a campaign folder holds plain files"
                )
        for entry in sorted(files):
            path = base / entry
            if not _ignored(entry) and not path.is_symlink():
                yield path


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.endswith("~") or name in IGNORED_FILES


def _is_partial(relative: str) -> bool:
    return relative.rsplit("/", 1)[-1].startswith("_")


class _TemplateChecker:
    """Jinja syntax, context references and each channel's obligations of every template."""

    def __init__(
        self,
        templates: Mapping[str, str],
        spec: CampaignSpec | None,
        names: Mapping[str, frozenset[str]],
        yaml_root: yaml.Node | None,
        channels: Mapping[str, type[Channel]],
        channel_suffixes: Mapping[str, str],
        report: _Report,
    ) -> None:
        self.templates = templates
        self.spec = spec
        self.names = names
        self.yaml_root = yaml_root
        self.channels = channels
        self.suffixes = channel_suffixes
        self.report = report
        self.environment = SandboxedEnvironment(autoescape=True)
        self.trees: dict[str, nodes.Template] = {}

    def check(self) -> None:
        for relative, source in self.templates.items():
            name = f"{TEMPLATES_DIR}/{relative}"
            self._check_file_name(relative, name)
            tree = self._parse(source, name, None, "")
            if tree is not None:
                self.trees[relative] = tree
                self._check_references(tree, name, None, "")
                self._check_includes(tree, name)
        for name, channel in self.channels.items():
            self._check_obligations(name, channel)
        if self.spec is not None:
            self._check_touch_texts(self.spec)

    def _parse(
        self, source: str, file: str, line: int | None, prefix: str
    ) -> nodes.Template | None:
        try:
            return self.environment.parse(source)
        except TemplateSyntaxError as error:
            at, message = unclosed_block(self.environment, source, error)
            self.report.add(file, line if line is not None else at, f"{prefix}{message}")
            return None

    def _check_file_name(self, relative: str, name: str) -> None:
        if _is_partial(relative):
            return
        suffix = max((s for s in self.suffixes.values() if relative.endswith(s)), key=len)
        stem = relative[: -len(suffix)]
        if "." not in stem.rsplit("/", 1)[-1]:
            self.report.add(name, None, f"a template file is named <template>.<locale>{suffix}")
            return
        locale = stem.rsplit(".", 1)[1]
        if self.spec is not None and locale not in self.spec.locales:
            self.report.add(
                name,
                None,
                f"locale {locale!r} is not one of the campaign's locales "
                f"({', '.join(self.spec.locales)})",
            )

    def _check_references(
        self, tree: nodes.Template, file: str, line: int | None, prefix: str
    ) -> None:
        local = _local_names(tree) | JINJA_IMPLICIT | set(self.environment.globals)
        for name in tree.find_all(nodes.Name):
            if name.ctx == "load" and name.name not in local and name.name not in CONTEXT_NAMES:
                hint = _hint(name.name, [*CONTEXT_NAMES, *self._dotted_names()], CONTEXT_NAMES)
                self.report.add(
                    file, line or name.lineno, f"{prefix}unknown name {name.name!r} {hint}"
                )
        for namespace, attr, lineno in _references(tree, local):
            message = self._reference_problem(namespace, attr)
            if message:
                self.report.add(file, line or lineno, f"{prefix}{message}")

    def _reference_problem(self, namespace: str, attr: str) -> str | None:
        if namespace in FIXED_NAMESPACES:
            known_fixed = FIXED_NAMESPACES[namespace]
            if attr in known_fixed:
                return None
            hint = _hint(attr, known_fixed, known_fixed, prefix=f"{namespace}.")
            return f"{namespace}.{attr} is not known {hint}"
        names = self.names.get(namespace)
        if names is None or attr in names:
            return None
        noun = CAMPAIGN_NAMESPACES[namespace]
        hint = _hint(attr, names, names, prefix=f"{namespace}.")
        return f"{namespace}.{attr} is not {noun} of this campaign {hint}"

    def _dotted_names(self) -> list[str]:
        """Every ``namespace.name`` a template may use, for suggestions."""
        spaces = {**FIXED_NAMESPACES, **self.names}
        return [f"{ns}.{attr}" for ns, attrs in spaces.items() for attr in attrs]

    def _check_includes(self, tree: nodes.Template, file: str) -> None:
        for included, lineno in _included(tree):
            if included not in self.templates:
                self.report.add(file, lineno, f"includes {included!r}, which is not in templates/")

    def _check_obligations(self, name: str, channel: type[Channel]) -> None:
        """What the channel says each of its templates must show (``template_must_show``)."""
        must_show = {
            tuple(reference.split(".", 1)): what
            for reference, what in channel.template_must_show.items()
        }
        if not must_show:
            return
        for relative in self.trees:
            if _is_partial(relative) or not relative.endswith(channel.template_suffix):
                continue
            shown = self._reachable_references(relative)
            if shown is None:
                continue
            for needed, what in must_show.items():
                if needed not in shown:
                    variable = "{{ " + ".".join(needed) + " }}"
                    self.report.add(
                        f"{TEMPLATES_DIR}/{relative}",
                        None,
                        f"{name} template must show {what}: use {variable}",
                    )

    def _reachable_references(self, start: str) -> set[tuple[str, str]] | None:
        """(namespace, attr) pairs used by a template or anything it includes.

        None when one of those templates did not parse: its syntax error is reported, and
        guessing what it would show would only add noise.
        """
        shown: set[tuple[str, str]] = set()
        pending, visited = [start], set()
        while pending:
            relative = pending.pop()
            if relative in visited:
                continue
            tree = self.trees.get(relative)
            if tree is None:
                if relative in self.templates:
                    return None
                continue
            visited.add(relative)
            local = _local_names(tree)
            shown |= {(ns, attr) for ns, attr, _ in _references(tree, local)}
            pending.extend(name for name, _ in _included(tree))
        return shown

    def _check_touch_texts(self, spec: CampaignSpec) -> None:
        """Subjects and preheaders are Jinja strings: same syntax and reference checks."""
        for index, touch in enumerate(spec.touches):
            for part in ("subject", "preheader"):
                value = getattr(touch, part)
                for loc, text in localized_parts(value, ("touches", index, part)):
                    locale = f" ({loc[-1]})" if loc[-1] != part else ""
                    prefix = f"touch {touch.key!r} {part}{locale}: "
                    line = self._yaml_line(loc)
                    tree = self._parse(text, SPEC_FILE, line, prefix)
                    if tree is not None:
                        self._check_references(tree, SPEC_FILE, line, prefix)

    def _yaml_line(self, loc: Loc) -> int | None:
        return _line_of(self.yaml_root, loc) if self.yaml_root is not None else None


def _hint(word: str, candidates: Iterable[str], known: Iterable[str], *, prefix: str = "") -> str:
    """``(did you mean 'x'?)`` with the nearest candidate, else ``(known: ...)``."""
    nearest = process.extractOne(word, list(candidates), scorer=fuzz.WRatio, score_cutoff=80)
    if nearest is not None:
        return f"(did you mean {prefix}{nearest[0]}?)"
    return f"(known: {', '.join(sorted(known)) or 'none'})"


def _local_names(tree: nodes.Template) -> set[str]:
    """Names a template defines for itself: loop targets, set, macro args, imports."""
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    names |= {macro.name for macro in tree.find_all(nodes.Macro)}
    for imported in tree.find_all(nodes.Import):
        names.add(imported.target)
    for from_import in tree.find_all(nodes.FromImport):
        names |= {n if isinstance(n, str) else n[1] for n in from_import.names}
    return names


def _references(tree: nodes.Template, local: set[str]) -> Iterator[tuple[str, str, int]]:
    """(namespace, attribute, line) of each ``ns.attr`` or ``ns['attr']`` in the template."""
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node, nodes.Getattr | nodes.Getitem):  # narrows find_all's Node
            continue
        base = node.node
        if not (isinstance(base, nodes.Name) and base.ctx == "load"):
            continue
        if (
            base.name in local
            or base.name not in FIXED_NAMESPACES.keys() | CAMPAIGN_NAMESPACES.keys()
        ):
            continue
        if isinstance(node, nodes.Getattr):
            yield base.name, node.attr, node.lineno
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield base.name, node.arg.value, node.lineno


def _included(tree: nodes.Template) -> Iterator[tuple[str, int]]:
    """Templates named by include, import or extends (constant names only)."""
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        if not isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends):
            continue  # narrows find_all's Node
        if isinstance(node.template, nodes.Const) and isinstance(node.template.value, str):
            yield node.template.value, node.lineno


# --- touches against templates ------------------------------------------------------------


def _check_touches(
    spec: CampaignSpec,
    root: yaml.Node,
    templates: Mapping[str, str],
    channel_suffixes: Mapping[str, str],
    channels: Mapping[str, type[Channel]],
    report: _Report,
) -> None:
    for index, touch in enumerate(spec.touches):
        suffix = channel_suffixes.get(touch.channel)
        if suffix is None:
            known = ", ".join(sorted(channel_suffixes)) or "none"
            report.add(
                SPEC_FILE,
                _line_of(root, ("touches", index, "channel")),
                f"touch {touch.key!r} has unknown channel {touch.channel!r} (known: {known})",
            )
            continue
        channel = channels.get(touch.channel)
        if channel is not None:
            content = _content_in(touch, spec.default_locale, spec)
            for message in channel.check_touch(touch.key, content):
                report.add(SPEC_FILE, _line_of(root, ("touches", index)), message)
        for locale in spec.locales:
            expected = touch.template_file(locale, suffix)
            if expected not in templates:
                report.add(
                    SPEC_FILE,
                    _line_of(root, ("touches", index, "template")),
                    f"touch {touch.key!r} has no template for locale {locale!r} "
                    f"(expected {TEMPLATES_DIR}/{expected})",
                )


def _check_touch_content(
    spec: CampaignSpec,
    root: yaml.Node,
    contents: Mapping[str, type[BaseModel]],
    report: _Report,
) -> None:
    """Each touch's channel content against the channel's own Content model."""
    for index, touch in enumerate(spec.touches):
        model = contents.get(touch.channel)
        if model is None:
            continue
        seen: set[str] = set()
        for locale in spec.locales:
            content = _content_in(touch, locale, spec)
            try:
                model.model_validate(content)
            except ValidationError as error:
                for detail in error.errors():
                    field_path = ".".join(str(part) for part in detail["loc"]) or "content"
                    message = f"touch {touch.key!r} content: {field_path}: {detail['msg']}"
                    if message in seen:
                        continue
                    seen.add(message)
                    where = ("touches", index, "content", *detail["loc"])
                    report.add(SPEC_FILE, _line_of(root, where), message)


def _content_in(touch: TouchSpec, locale: str, spec: CampaignSpec) -> dict[str, Any]:
    """What the touch gives its channel in one locale: its content, subject and preheader."""
    content = {
        key: localize(value, locale, spec.default_locale) for key, value in touch.content.items()
    }
    for key in ("subject", "preheader"):
        value = getattr(touch, key)
        if value:
            content[key] = localize(value, locale, spec.default_locale)
    return content
