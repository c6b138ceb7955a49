"""Lists sent to PostgreSQL as binary arrays: the same rows found, a fraction of the work.

The send path hands PostgreSQL a batch's addresses and ids as array parameters (the
ledger's rows, the suppression lists' check, the journal's notes). psycopg chose the text
format for them, quoting and escaping each item in Python; the engine's connections now
send them in binary (core/db.py). What must not change is what they find: addresses with
the characters the text format has to escape are matched exactly, on either database.
"""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import make_tenant
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from sqlalchemy.engine import Engine

from partnercast.core.tenancy import tenant_session
from partnercast.tenants.suppressions import erase, suppress, suppressed_among

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

# What a text array literal must quote or escape (quotes, backslashes, commas, braces), an
# item that begins like its NULL, letters beyond ASCII, an apostrophe.
AWKWARD = [
    '"quoted"@example.com',
    "back\\slash@example.com",
    "comma,inside@example.com",
    "{braces}@example.com",
    "null@example.com",
    "jürgen.müller@example.de",
    "o'brien@example.ie",
]


def test_the_engine_sends_a_list_to_postgresql_in_binary(postgres_engine: Engine) -> None:
    with postgres_engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        dumper = Transformer(raw).get_dumper(["a@example.com"], PyFormat.AUTO)
        assert dumper.format == pq.Format.BINARY


def test_suppressed_addresses_are_found_among_a_batch_whatever_they_hold(
    any_engine: Engine,
) -> None:
    tenant = make_tenant(any_engine, "vendor-arrays")
    others = [f"reader{n}@example.com" for n in range(1_000)]
    with tenant_session(any_engine, tenant) as session:
        for address in AWKWARD[:4]:
            suppress(session, address, reason="unsubscribed", now=NOW)
        suppress(session, others[500], reason="unsubscribed", now=NOW)
        erase(session, AWKWARD[5], now=NOW)
    with tenant_session(any_engine, tenant) as session:
        found = suppressed_among(session, [*AWKWARD, *others])
    assert found == {*AWKWARD[:4], AWKWARD[5], others[500]}
