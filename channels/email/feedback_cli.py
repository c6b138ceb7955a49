"""``partnercast feedback import``: bounce and complaint reports from files.

Each FILE is one message (``.eml``) or an mbox (several messages, each starting with a
``From `` line; read with :mod:`mailbox`). Every message is parsed and recorded on its own
(its own transaction) in ``--tenant`` only; one line per message says what it did, then a
summary. Exit 1 when any message was rejected (unreadable, not a report, or about no
delivery of this tenant); a bad file is a rejected line, never a traceback.

Mounted through the ``register_commands`` hook; the engine is reached through the host.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from partnercast.channels.email.feedback_intake import import_message
from partnercast.plugins.cli import NowOption, parse_now
from partnercast.plugins.host import REJECTED, FeedbackOutcome, open_host
from partnercast.plugins.progress import progress_bar

feedback_app = typer.Typer(
    help="Bounce reports (DSN) and complaints (ARF feedback loops).", no_args_is_help=True
)
OUTCOMES = ("recorded", "unchanged", "ignored", "rejected")


def register(app: typer.Typer) -> None:
    """Mount `feedback`, in the help's Sending panel."""
    app.add_typer(feedback_app, name="feedback", rich_help_panel="Sending")


def messages(path: Path) -> Iterator[tuple[str, bytes | str]]:
    """(label, raw bytes) per message of ``path``, or (label, error line) when unreadable."""
    try:
        with path.open("rb") as handle:
            head = handle.read(5)
    except OSError as error:
        yield str(path), f"cannot read the file: {error.strerror or error}"
        return
    if head != b"From ":
        try:
            yield str(path), path.read_bytes()
        except OSError as error:
            yield str(path), f"cannot read the file: {error.strerror or error}"
        return
    try:
        box = mailbox.mbox(path, create=False)
        keys = list(box.iterkeys())
    except (OSError, mailbox.Error) as error:
        yield str(path), f"cannot read the mbox: {error}"
        return
    try:
        for number, key in enumerate(keys, start=1):
            yield f"{path}#{number}", box.get_bytes(key)
    finally:
        box.close()


@feedback_app.command("import")
def feedback_import(
    files: Annotated[
        list[Path],
        typer.Argument(help="Reports: .eml files and/or mbox files.", show_default=False),
    ],
    tenant: Annotated[
        str,
        typer.Option(
            "--tenant",
            "-t",
            envvar="PARTNERCAST_TENANT",
            help="Slug of the tenant (vendor) to act as.",
            show_default=False,
        ),
    ],
    now: NowOption = None,
) -> None:
    """Record bounce reports (RFC 3464 DSNs, and text bounces that quote our Message-ID)
    and complaints (RFC 5965 ARF): a hard bounce marks the delivery bounced and suppresses
    the address, a complaint records `complained` and suppresses it, soft bounces and
    delays are recorded. Importing the same report again changes nothing."""
    instant = parse_now(now)  # the command's one instant: every report is recorded at it
    tally: Counter[str] = Counter()
    with open_host() as host, progress_bar("feedback import") as update:
        tenant_id = host.tenant_id(tenant)
        for number, path in enumerate(files, start=1):
            for label, raw in messages(path):
                if isinstance(raw, str):
                    result = FeedbackOutcome(REJECTED, raw)
                else:
                    result = import_message(host, tenant_id, raw, now=instant)
                tally[result.outcome] += 1
                typer.secho(
                    f"{label}: {result.line}", fg="red" if result.outcome == REJECTED else None
                )
                update(sum(tally.values()), None, f"{path.name} ({number} of {len(files)})")
    total = sum(tally.values())
    counts = ", ".join(f"{tally[o]} {o}" for o in OUTCOMES)
    typer.echo(f"{total} reports: {counts}")
    if tally[REJECTED]:
        raise typer.Exit(1)
