"""The weekly review agenda as Rich tables (terminal) and as Markdown (a file to share)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.text import Text

from partnercast.concierge.review import Agenda
from partnercast.core.cli_tables import Column, Kind, print_table

# section title, agenda attribute, columns (key, header)
SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "What went out since the last review",
        "went_out",
        (
            ("date", "date"),
            ("campaign", "campaign"),
            ("touch", "touch"),
            ("channel", "channel"),
            ("sent", "sent"),
            ("delivered", "delivered"),
            ("bounced", "bounced"),
            ("suppressed", "suppressed"),
        ),
    ),
    (
        "Open tasks",
        "open_tasks",
        (
            ("id", "id"),
            ("kind", "kind"),
            ("title", "about"),
            ("owner", "owner"),
            ("due", "due"),
            ("status", "status"),
        ),
    ),
    (
        "Leads without follow-up",
        "leads_without_followup",
        (("lead", "lead"), ("since", "since")),
    ),
    (
        "Next touches",
        "next_touches",
        (
            ("at", "at"),
            ("campaign", "campaign"),
            ("touch", "touch"),
            ("channel", "channel"),
            ("waiting", "note"),
        ),
    ),
    (
        "Waiting for approval",
        "awaiting_approval",
        (("campaign", "campaign"), ("state", "state"), ("since", "since"), ("days", "days")),
    ),
)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    return "" if value is None else str(value).replace("_", " ")


# How each column is laid out (partnercast.core.cli_tables): numbers right-aligned, words
# (dates, keys, channels) never cut, text wrapped at word boundaries. The first column of a
# section is its key.
NUMBERS = {"sent", "delivered", "bounced", "suppressed", "days"}
TEXTS = {"kind", "title", "owner", "lead", "waiting", "state"}


def _kind(key: str) -> Kind:
    return "number" if key in NUMBERS else "text" if key in TEXTS else "word"


def _result_lines(agenda: Agenda) -> Iterator[str]:
    r = agenda.results
    leads = "not tracked yet" if r.get("leads") is None else str(r["leads"])
    yield f"delivered: {r['delivered']}"
    if "opened" in r:  # agendas stored before these were counted lack them
        yield f"opened: {r['opened']}"
        yield f"clicked: {r['clicked']}"
    yield f"unsubscribes: {r['unsubscribes']}"
    yield f"bounces: {r['bounces']}"
    yield f"complaints: {r['complaints']}"
    yield f"new leads: {leads}"
    if "mql" in r:
        yield f"reached MQL: {r['mql']}"
        yield f"SQL: {r['sql']}"
        yield f"opportunities: {r['opportunities']} ({r['pipeline_added']:,.0f} pipeline)"
        yield f"won: {r['won']} ({r['won_value']:,.0f})"


def _last_notes(agenda: Agenda) -> str | None:
    """'Agreed at the last review' line, or None when there was none or it has no notes."""
    if not agenda.last_review or not agenda.last_notes.strip():
        return None
    who = f", {agenda.last_by}" if agenda.last_by else ""
    return f"Notes of the last review ({agenda.last_review[:10]}{who}): {agenda.last_notes.strip()}"


def _header(agenda: Agenda) -> list[str]:
    last = agenda.last_review[:10] if agenda.last_review else "none yet"
    return [
        f"Weekly review: {agenda.partner_name} ({agenda.partner})",
        f"point of contact: {agenda.point_of_contact} · last review: {last} · "
        f"generated {agenda.generated_at[:16].replace('T', ' ')} UTC",
    ]


def print_agenda(console: Console, agenda: Agenda) -> None:
    """The agenda at the console's width: lines wrap at word boundaries, tables fit."""
    title, subtitle = _header(agenda)
    console.print(Text(title, style="bold"))
    console.print(Text(subtitle))
    last = _last_notes(agenda)
    if last:
        console.print(Text(last))
    console.print(Text("Results of the past week: " + " · ".join(_result_lines(agenda))))
    for section, attribute, columns in SECTIONS:
        rows = getattr(agenda, attribute)
        if rows is None:
            console.print(Text(f"{section}: not tracked yet"))
            continue
        if not rows:
            console.print(Text(f"{section}: none"))
            continue
        kinds = [
            Column(header, "key" if n == 0 else _kind(key))
            for n, (key, header) in enumerate(columns)
        ]
        cells = [[_cell(row.get(key)) for key, _h in columns] for row in rows]
        print_table(console, section, kinds, cells)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(agenda: Agenda) -> str:
    title, subtitle = _header(agenda)
    lines = [f"# {_md(title)}", "", _md(subtitle), ""]
    last = _last_notes(agenda)
    if last:
        lines += ["## Since the last review", "", _md(last), ""]
    lines += ["## Results of the past week", ""]
    lines += [f"- {line}" for line in _result_lines(agenda)]
    for section, attribute, columns in SECTIONS:
        lines += ["", f"## {section}", ""]
        rows = getattr(agenda, attribute)
        if rows is None:
            lines.append("Not tracked yet.")
        elif not rows:
            lines.append("None.")
        else:
            lines.append("| " + " | ".join(header for _k, header in columns) + " |")
            lines.append("|" + "---|" * len(columns))
            for row in rows:
                lines.append("| " + " | ".join(_md(_cell(row.get(k))) for k, _h in columns) + " |")
    lines += ["", "## Notes", "", ""]
    return "\n".join(lines)
