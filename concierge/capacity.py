"""Concierge capacity: who looks after which partners, in which language, and how many.

A concierge manages 50 to 100 partners per language per quarter. Each active partner is
assigned to one concierge in one language; the load of a concierge is counted per
language over its current assignments (an assignment lasts the quarter it is made for,
so current assignments are this quarter's load). Over the tenant's cap, the engine warns;
:func:`propose_balance` spreads each language's partners evenly over the concierges who
cover it, keeping current assignments where it can, and says why each move is made.

The reasons are data (:class:`Reason`: a code and its values), so that whoever shows them
words them in the reader's language (the dashboard, through its catalogue); the English
sentences of the CLI are made from them here (:func:`english`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from partnercast.concierge.models import Concierge, PartnerAssignment
from partnercast.concierge.tasks import concierge_settings, language_of, list_concierges
from partnercast.core.errors import UserError
from partnercast.tenants.models import Partner


@dataclass(frozen=True)
class Overload:
    concierge: str
    language: str
    load: int
    cap: int

    def __str__(self) -> str:
        return (
            f"{self.concierge} holds {self.load} {self.language} partners, "
            f"over the cap of {self.cap} per language per quarter"
        )


def assignments(session: Session) -> dict[int, PartnerAssignment]:
    """Every assignment of the tenant's active partners, by partner id."""
    rows = session.exec(
        select(PartnerAssignment)
        .join(Partner, col(Partner.id) == PartnerAssignment.partner_id)
        .where(Partner.status == "active")
    ).all()
    return {row.partner_id: row for row in rows}


def loads(session: Session) -> dict[int, Counter[str]]:
    """Per concierge id, how many active partners they hold in each language."""
    counted: dict[int, Counter[str]] = defaultdict(Counter)
    for row in assignments(session).values():
        counted[row.concierge_id][row.language] += 1
    return counted


def overloads(session: Session) -> list[Overload]:
    """Every (concierge, language) over the tenant's cap."""
    cap = concierge_settings(session).partners_per_language_cap
    by_id = {c.id: c for c in list_concierges(session)}
    return [
        Overload(by_id[cid].name, language, count, cap)
        for cid, counter in sorted(loads(session).items())
        for language, count in sorted(counter.items())
        if count > cap and cid in by_id
    ]


def partner_languages(partner: Partner) -> list[str]:
    return list(dict.fromkeys(language_of(locale) for locale in partner.languages))


def assign_partner(
    session: Session,
    partner: Partner,
    concierge: Concierge,
    *,
    language: str | None = None,
    now: datetime,
) -> PartnerAssignment:
    """Give ``partner`` to ``concierge``, in a language both share (the first by default)."""
    shared = [lang for lang in partner_languages(partner) if lang in concierge.languages]
    if language is not None:
        language = language_of(language)
        if language not in shared:
            raise UserError(
                f"{concierge.name} and {partner.external_id} do not share the language "
                f"{language!r} (shared: {', '.join(shared) or 'none'})",
                where="--language",
            )
    elif not shared:
        raise UserError(
            f"{concierge.name} covers {', '.join(concierge.languages)}; partner "
            f"{partner.external_id} speaks {', '.join(partner.languages) or 'no language'}"
        )
    row = session.exec(
        select(PartnerAssignment).where(PartnerAssignment.partner_id == partner.id)
    ).first() or PartnerAssignment(
        partner_id=partner.id or 0, concierge_id=concierge.id or 0, language="", assigned_at=now
    )
    row.concierge_id = concierge.id or 0
    row.language = language or shared[0]
    row.assigned_at = now
    session.add(row)
    session.flush()
    return row


# --- balancing ----------------------------------------------------------------------------

# The codes of a Reason and the values each carries.
SPREAD = "spread"  # language, partners, concierges (how many), names, target
OVER_CAP = "over_cap"  # language, cap, needed: the even share is over the cap
NOT_ASSIGNED = "not_assigned"  # (a move) the partner has no concierge yet
OVER_SHARE = "over_share"  # concierge, share: its concierge holds more than the even share
NOT_COVERED = "not_covered"  # language: its concierge does not cover the language
MOST_ROOM = "most_room"  # concierge, language: where the move goes

ENGLISH = {
    SPREAD: "{language}: {partners} partners over {concierges} concierge(s) ({names}): "
    "at most {target} each",
    OVER_CAP: "over the cap of {cap}: {language} needs {needed} concierges",
    NOT_ASSIGNED: "not assigned yet",
    OVER_SHARE: "{concierge} is over the even share of {share}",
    NOT_COVERED: "its concierge does not cover {language}",
    MOST_ROOM: "{concierge} has the most room in {language}",
}
"""The CLI's sentences (English; the dashboard words the codes itself)."""


@dataclass(frozen=True)
class Reason:
    """Why, as data: a code (:data:`ENGLISH` lists them) and the values it names."""

    code: str
    values: Mapping[str, str | int] = field(default_factory=dict, hash=False)


def english(reasons: tuple[Reason, ...] | list[Reason]) -> str:
    """The reasons as the CLI prints them: English sentences joined by '; '."""
    return "; ".join(ENGLISH[reason.code].format(**reason.values) for reason in reasons)


@dataclass(frozen=True)
class Move:
    partner_id: int
    partner: str
    language: str
    from_concierge: str | None
    to_concierge: str
    to_id: int
    why: tuple[Reason, ...] = ()  # why it moves, then where to (MOST_ROOM)

    @property
    def reason(self) -> str:
        return english(self.why)


@dataclass
class Proposal:
    """A balanced assignment: the moves to make and, per language, how it was reasoned."""

    moves: list[Move] = field(default_factory=list)
    reasoning: list[tuple[Reason, ...]] = field(default_factory=list)  # one per language
    uncovered: dict[str, list[str]] = field(default_factory=dict)  # language -> partners

    @property
    def explanations(self) -> list[str]:
        """Per language, how it was balanced, in English (the CLI's lines)."""
        return [english(reasons) for reasons in self.reasoning]


def propose_balance(session: Session) -> Proposal:
    """Greedy, language by language: keep who fits under the even target, move the rest."""
    concierges = list_concierges(session)
    current = assignments(session)
    cap = concierge_settings(session).partners_per_language_cap
    by_language = _partners_by_language(session, concierges, current)
    proposal = Proposal()
    for language in sorted(by_language):
        partners = by_language[language]
        covering = [c for c in concierges if language in c.languages]
        if not covering:
            proposal.uncovered[language] = [p.external_id for p in partners]
            continue
        _balance_language(proposal, language, partners, covering, current, cap)
    return proposal


def _partners_by_language(
    session: Session, concierges: list[Concierge], current: dict[int, PartnerAssignment]
) -> dict[str, list[Partner]]:
    """Each active partner under one language: its current one if still covered, else its
    first language that some concierge covers, else its first language (uncovered)."""
    covered = {language for c in concierges for language in c.languages}
    by_id = {c.id: c for c in concierges}
    grouped: dict[str, list[Partner]] = defaultdict(list)
    partners = session.exec(
        select(Partner).where(Partner.status == "active").order_by(Partner.external_id)
    ).all()
    for partner in partners:
        languages = partner_languages(partner)
        row = current.get(partner.id or 0)
        holder = by_id.get(row.concierge_id) if row else None
        if row and holder and row.language in holder.languages and row.language in languages:
            grouped[row.language].append(partner)
        elif languages:
            grouped[next((lang for lang in languages if lang in covered), languages[0])].append(
                partner
            )
    return grouped


def _balance_language(
    proposal: Proposal,
    language: str,
    partners: list[Partner],
    covering: list[Concierge],
    current: dict[int, PartnerAssignment],
    cap: int,
) -> None:
    count, k = len(partners), len(covering)
    base, extra = divmod(count, k)
    names = ", ".join(c.name for c in covering)
    target = base + (1 if extra else 0)
    reasoning = [
        Reason(
            SPREAD,
            {
                "language": language,
                "partners": count,
                "concierges": k,
                "names": names,
                "target": target,
            },
        )
    ]
    if target > cap:
        needed = -(-count // cap)
        reasoning.append(Reason(OVER_CAP, {"cap": cap, "language": language, "needed": needed}))
    proposal.reasoning.append(tuple(reasoning))
    ids = {c.id for c in covering}
    # Concierges in name order get the one extra partner first: the split is deterministic.
    targets = {c.id: base + (1 if i < extra else 0) for i, c in enumerate(covering)}
    kept: Counter[int | None] = Counter()
    homeless: list[tuple[Partner, str | None, Reason]] = []
    for partner in partners:
        row = current.get(partner.id or 0)
        holder = row.concierge_id if row and row.language == language else None
        if holder in ids and kept[holder] < targets[holder]:
            kept[holder] += 1
            continue
        name = next((c.name for c in covering if c.id == holder), None)
        if row is None:
            why = Reason(NOT_ASSIGNED)
        elif holder in ids:
            why = Reason(OVER_SHARE, {"concierge": name or "", "share": targets[holder]})
        else:
            why = Reason(NOT_COVERED, {"language": language})
        homeless.append((partner, name, why))
    for partner, from_name, why in homeless:
        to = min(covering, key=lambda c: (kept[c.id] - targets[c.id], kept[c.id], c.name))
        kept[to.id] += 1
        proposal.moves.append(
            Move(
                partner.id or 0,
                partner.external_id,
                language,
                from_name,
                to.name,
                to.id or 0,
                (why, Reason(MOST_ROOM, {"concierge": to.name, "language": language})),
            )
        )


def apply_balance(session: Session, proposal: Proposal, *, now: datetime) -> int:
    """Make the proposed moves; returns how many partners changed hands."""
    current = {row.partner_id: row for row in session.exec(select(PartnerAssignment)).all()}
    for move in proposal.moves:
        row = current.get(move.partner_id) or PartnerAssignment(
            partner_id=move.partner_id,
            concierge_id=move.to_id,
            language=move.language,
            assigned_at=now,
        )
        row.concierge_id, row.language, row.assigned_at = move.to_id, move.language, now
        session.add(row)
    session.flush()
    return len(proposal.moves)
