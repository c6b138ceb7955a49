"""The ``partnercast`` command: the composition root that mounts every folder's commands.

Each folder owns its commands (tenants/cli.py, campaigns/cli.py, ...); this module only
assembles them, then lets plugins add theirs through the ``register_commands`` hook.

``partnercast --help`` groups the commands in panels by job, in this order: Set-up,
Campaigns, Sending, Concierge, Funnel, Admin (:data:`PANELS` says which command goes
where), then Plugins: the commands plugins add, unless a plugin names a panel itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.models import CommandInfo, TyperInfo

from partnercast import __version__
from partnercast.core.cli import (
    HandledErrorsGroup,
    NowOption,
    compose_before_open,
    console,
    opened_engine,
    output_folder,
    parse_now,
    run_cli,
)
from partnercast.core.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from partnercast.plugins.host import Host
    from partnercast.tenants.models import Partner

# A command line imports this module, typer and core.cli, then the one folder's commands it
# names (MOUNTS): every feature module, SQLAlchemy and the settings are imported inside the
# commands, when they run (tests/test_cli_start.py holds `--help` to no SQLAlchemy).

PANELS: dict[str, tuple[str, ...]] = {
    "Set-up": ("tenants", "partners", "contacts", "segments", "accounts", "users"),
    "Campaigns": (
        "campaign",
        "enroll",
        "enrollments",
        "customise",
        "submit",
        "approve",
        "request-changes",
        "decline",
        "auto-approve",
        "preview",
        "schedule",
        "cycle",
    ),
    "Sending": ("tick", "worker", "queue", "status"),
    "Concierge": ("tasks", "concierges", "review", "reviews"),
    "Funnel": ("leads", "crm", "spend", "metrics", "score", "report"),
    "Admin": ("init", "db", "serve", "api-tokens", "webhooks", "plugins", "demo", "version"),
}
"""The help panels of the built-in commands, in the order ``--help`` shows them."""
PLUGINS_PANEL = "Plugins"
"""Where a command a plugin adds is shown, unless it names a panel (``rich_help_panel``)."""
_PANEL_ORDER = {panel: i for i, panel in enumerate([*PANELS, PLUGINS_PANEL])}
_HELP_ORDER = {name: i for i, name in enumerate(n for names in PANELS.values() for n in names)}


class RootGroup(HandledErrorsGroup):
    """The root command group: lists the commands panel by panel in the order of
    :data:`PANELS`, each built-in panel as it lists them, then the plugins' panels, each
    in the order its commands were added."""

    def list_commands(self, ctx: Any) -> list[str]:  # ctx: see HandledErrorsGroup.invoke
        names = super().list_commands(ctx)

        def place(name: str) -> tuple[int, int, int]:
            panel = str(getattr(self.commands[name], "rich_help_panel", None))
            return (
                _PANEL_ORDER.get(panel, len(_PANEL_ORDER)),
                _HELP_ORDER.get(name, len(_HELP_ORDER)),
                names.index(name),
            )

        return sorted(names, key=place)


app = typer.Typer(
    name="partnercast",
    help="Through-channel campaigns: build once, let partners customise and approve, run cycles.",
    cls=RootGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(f"partnercast {__version__}")


@app.command("init")
def init(
    rotate: bool = typer.Option(
        False,
        "--rotate",
        help="Put new keys first in the key file; the old ones still verify links already "
        "sent and decrypt until `partnercast accounts rotate-keys`.",
    ),
) -> None:
    """Set up: generate the keys (an owner-only key file) and create or migrate the database."""
    from partnercast.core.keys import key_file_path, rotate_key_file
    from partnercast.core.settings import config_file_path, load_settings

    if rotate:
        path = key_file_path(config_file_path())
        settings = load_settings()
        if settings.keys_from != str(path):
            raise UserError(
                f"the keys come from {settings.keys_from}, not the key file: rotate them there"
            )
        rotate_key_file(path)
        console.print(
            f"keys rotated in {path}: new links are signed with the new key, old links still "
            "verify; run `partnercast accounts rotate-keys` to re-encrypt stored secrets"
        )
        return
    _make_keys_if_missing()
    _upgrade_database()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema (safe to run again); on a new
    set-up with no keys configured, generate them first as `partnercast init` does."""
    _make_keys_if_missing()
    _upgrade_database()


def _make_keys_if_missing() -> None:
    """Write a key file (owner-only) when the settings have no keys and none is there; then
    check the keys, whatever their source. Never prints a key."""
    from partnercast.core.keys import (
        check_secret_key,
        generate_keys,
        key_file_path,
        upgrade_keys,
        write_key_file,
    )
    from partnercast.core.settings import config_file_path, load_settings

    settings = load_settings(require_keys=False)
    path = key_file_path(config_file_path())
    if settings.secret_key is not None and not settings.encryption_keys and not path.exists():
        # Upgrading from a version that derived the encryption key from the secret key:
        # keep that key to decrypt what it sealed (docs/upgrading.md).
        secret = settings.secret_key.get_secret_value()
        check_secret_key(secret, settings.keys_from)
        write_key_file(path, upgrade_keys(secret))
        console.print(
            f"encryption keys generated in {path} (owner-only: back it up), a new one first "
            "and the one earlier versions derived from your secret key last, so stored "
            "secrets still open: run `partnercast accounts rotate-keys` to re-encrypt them, "
            "then that last key may be removed"
        )
    elif (settings.secret_key is None or not settings.encryption_keys) and not path.exists():
        write_key_file(path, generate_keys())
        console.print(
            f"keys generated in {path} (readable by you only: back it up, keep it secret)"
        )
    load_settings()  # the keys, wherever they come from, are real ones


def _upgrade_database() -> None:
    from partnercast.core.db import current_revision, upgrade

    with opened_engine(migrated=False) as engine:
        upgrade(engine)
        url = engine.url.render_as_string(hide_password=True)
        console.print(f"database at revision {current_revision(engine)}: {url}")


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(
        8025, min=0, max=65535, help="Port to listen on (0: a free one, named when it listens)."
    ),
    workers: int = typer.Option(
        1, min=1, max=64, help="Processes serving the same port (each a whole engine)."
    ),
    proxy_headers: bool = typer.Option(
        False,
        "--proxy-headers/--no-proxy-headers",
        help="Behind a reverse proxy: take the client's address from X-Forwarded-For, "
        "when the connection comes from --forwarded-allow-ips.",
    ),
    forwarded_allow_ips: str = typer.Option(
        "127.0.0.1",
        help="The proxies whose X-Forwarded-* headers are trusted: comma-separated "
        "addresses or networks, or * (only with --proxy-headers).",
    ),
) -> None:
    """Serve the engine's HTTP endpoints (unsubscribe, tracking, microsites, webhooks) until
    SIGTERM or Ctrl+C."""
    from partnercast.web.serve import ServeOptions, serve

    options = ServeOptions(host, port, workers, proxy_headers, forwarded_allow_ips)

    def ready(bound: int) -> None:
        many = f" with {workers} workers" if workers > 1 else ""
        console.print(f"serving on http://{host}:{bound}{many} (Ctrl+C to stop)")

    try:
        serve(options, ready=ready)
    except OSError as error:  # port taken, no permission, unknown interface
        raise UserError(
            f"cannot listen on {host}:{port}: {error.strerror}", where="serve"
        ) from error
    console.print("stopped")


def demo(
    folder: Path = typer.Option(
        Path("partnercast-demo"), help="Folder for the demo's database and output."
    ),
    partners: int = typer.Option(40, min=6, max=400, help="How many partners to create."),
    contacts: int = typer.Option(2400, min=100, max=200_000, help="How many contacts in all."),
    now: NowOption = None,
) -> None:
    """Run the whole story on a fresh SQLite database: partners, a campaign, a 45-day cycle.

    The story runs on a simulated clock placed around --now: its first cycle started a
    few days before, so the links it mails are fresh when followed over real HTTP."""
    from partnercast.demo import run_demo

    output_folder(folder, where="--folder")
    run_demo(folder, now=parse_now(now), partners=partners, contacts=contacts)


def plugins_command() -> None:
    """List the loaded plugins, where they come from, and the channels they add."""
    from rich.table import Table
    from rich.text import Text

    from partnercast.plugins.manager import default_plugins

    loaded = default_plugins()
    classes = loaded.channel_classes()  # first: a plugin failing to register shows in the table
    table = Table("plugin", "distribution", "version", "status")
    for info in loaded.infos:
        table.add_row(
            info.name,
            info.distribution,
            info.version,
            Text(info.error, style="red") if info.error else "loaded",
        )
    console.print(table)
    channels = ", ".join(f"{name} ({cls.title})" for name, cls in sorted(classes.items()))
    console.print(f"channels: {channels or 'none'}")


def worker(
    interval: float = typer.Option(5.0, min=0.2, max=3600, help="Seconds between ticks."),
    once: bool = typer.Option(False, "--once", help="Run one tick and exit (cron, tests)."),
    now: str | None = typer.Option(
        None, "--now", help="With --once: the instant to tick for (ISO, UTC); default now."
    ),
    lease: float = typer.Option(
        300.0, min=5, max=86400, help="Seconds a claimed dispatch stays leased."
    ),
    batch: int = typer.Option(20, min=1, help="Dispatches claimed at a time."),
) -> None:
    """Run due work on real time until SIGTERM/Ctrl+C: ticks and the plugins' jobs.

    Several workers may run against one PostgreSQL database, on any hosts: dispatches are
    claimed under leases, and each periodic job runs once per scheduled run. SQLite takes
    one worker: a second is refused while the first is alive (--once is not a worker).
    """
    import logging

    from partnercast.campaigns.ticking import TickReport, tick
    from partnercast.concierge.scan_schedule import scan_after_tick, task_scan_job
    from partnercast.core.scheduler import PeriodicJob
    from partnercast.core.settings import load_settings
    from partnercast.core.timeutil import advancing_from, utcnow
    from partnercast.core.worker import Worker, new_worker_id
    from partnercast.funnel import channel_metrics
    from partnercast.plugins.manager import default_plugins
    from partnercast.web.api.conventions import idempotency_purge_job
    from partnercast.web.webhooks_cli import webhook_job

    if now and not once:
        raise typer.BadParameter("--now goes with --once only", param_hint="--now")
    # --now is the instant for everything this tick does, its leases included.
    moment = parse_now(now) if once else None
    settings = load_settings()
    plugins = default_plugins()
    # Import every channel now: done lazily it took the first dispatch's lease (seconds
    # of imports, e.g. twitter-text's regexes, after the claim, before the first fence).
    plugins.channel_classes()
    worker_id = new_worker_id()
    with opened_engine(settings) as engine:

        def run_tick(
            at: datetime,
            should_stop: Callable[[], bool] = lambda: False,
            clock: Callable[[], datetime] = utcnow,  # the running worker's leases: real time
        ) -> TickReport:
            return tick(
                engine,
                settings,
                at,
                plugins=plugins,
                worker_id=worker_id,
                lease_seconds=lease,
                clock=clock,
                claim_batch=batch,
                should_stop=should_stop,
                # The running worker scans in a job of its own (task_scan_job).
                after=[scan_after_tick, _deliver_webhooks] if once else [],
            )

        if moment is not None:
            report = run_tick(moment, clock=advancing_from(moment))
            states = ", ".join(f"{n} {state}" for state, n in sorted(report.states.items()))
            console.print(f"worker {worker_id}: {states or 'nothing due'}; {report.sent} sent")
            for line in report.why():  # one line per distinct reason, never a traceback
                console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
            return
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        jobs = [PeriodicJob(job.name, job.function, job.every) for job in plugins.jobs()]
        jobs.append(channel_metrics.job(engine, settings, plugins))  # daily social/search metrics
        jobs.append(task_scan_job(engine))  # concierge tasks, once a minute across workers
        jobs.append(webhook_job(engine, settings, worker_id))  # every few seconds
        jobs.append(idempotency_purge_job(engine))  # expired API Idempotency-Keys, hourly
        running = Worker(
            engine,
            run_tick,
            interval=interval,
            jobs=jobs,
            worker_id=worker_id,
            on_ready=lambda: console.print(
                f"worker {worker_id} started: tick every {interval:g}s, "
                f"{len(jobs)} plugin jobs (Ctrl+C or SIGTERM to stop)"
            ),
        )
        code = running.run()
    console.print(f"worker {worker_id} stopped")
    raise typer.Exit(code)


def queue(
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", envvar="PARTNERCAST_TENANT", help="Only this tenant."
    ),
    now: NowOption = None,
) -> None:
    """The dispatch queue per channel: due, running (leased), retrying, done, failed."""
    from rich.table import Table
    from rich.text import Text

    from partnercast.core.outbox import QUEUE_BUCKETS, queue_counts
    from partnercast.tenants.scope import tenant_or_system

    moment = parse_now(now)
    reason = "the operator's queue view counts every tenant"
    with opened_engine() as engine, tenant_or_system(engine, tenant, reason=reason) as session:
        counts = queue_counts(session, moment)
    table = Table("channel", *QUEUE_BUCKETS, title=f"queue ({tenant or 'all tenants'})")
    for channel in sorted(counts):
        table.add_row(channel, *(str(counts[channel].get(b, 0)) for b in QUEUE_BUCKETS))
    total = {b: sum(c.get(b, 0) for c in counts.values()) for b in QUEUE_BUCKETS}
    table.add_row(Text("all", "bold"), *(Text(str(total[b]), "bold") for b in QUEUE_BUCKETS))
    console.print(table)


def status(
    campaign: str | None = typer.Argument(
        None, help="A campaign: its partners' approvals and sends instead (needs --tenant)."
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", envvar="PARTNERCAST_TENANT", help="Only this tenant."
    ),
    every_account: bool = typer.Option(
        False, "--accounts", help="List every channel account (many are summed up per channel)."
    ),
    now: NowOption = None,
) -> None:
    """The queue per channel, send rates against their limits, accounts, live workers.

    Without --tenant: every tenant (the operator's or a concierge agency's view). With a
    CAMPAIGN: per partner, the approval state and the touches sent, delivered, suppressed.
    """
    if campaign is not None:
        from partnercast.campaigns.workflow_cli import campaign_status

        campaign_status(campaign, tenant)
        return
    from partnercast.core.settings import load_settings
    from partnercast.plugins.manager import default_plugins
    from partnercast.status import gather, show
    from partnercast.tenants.scope import tenant_or_system

    moment = parse_now(now)
    settings = load_settings()
    channels = default_plugins().channel_classes()
    reason = "the operator's status view covers every tenant"
    with (
        opened_engine(settings) as engine,
        tenant_or_system(engine, tenant, reason=reason) as session,
    ):
        report = gather(engine, session, moment, channels, settings)
    show(report, moment, console, tenant, every_account=every_account)


def _tenants() -> None:
    from partnercast.tenants.cli import register

    # Tenants do not import the funnel: erasing a person reaches its leads through this.
    register(app, erasers={"leads": _erase_leads})


def _concierge() -> None:
    from partnercast.concierge.cli import register

    register(app)


def _funnel() -> None:
    from partnercast.funnel.cli import register

    register(app)


def _campaigns() -> None:
    from partnercast.campaigns.cli import register

    register(app)


def _workflow() -> None:
    from partnercast.campaigns.workflow_cli import register

    # Campaigns do not import the concierge: the readiness checklist and the task scan
    # that ends a tick are handed in here.
    register(app, readiness=_missing_by_partner, after_tick=[_scan_after_tick, _deliver_webhooks])


# What one folder hands another, each imported when it is called, not when its command is
# mounted: a command's --help imports none of the features it would use.


def _erase_leads(session: Session, address: str, now: datetime) -> int:
    from partnercast.funnel.leads import erase_leads

    return erase_leads(session, address, now)


def _missing_by_partner(session: Session, partners: Sequence[Partner]) -> dict[int, list[str]]:
    from partnercast.concierge.readiness import missing_by_partner

    return missing_by_partner(session, partners)


def _scan_after_tick(engine: Engine, now: datetime, tenant_ids: list[int]) -> int:
    from partnercast.concierge.scan_schedule import scan_after_tick

    return scan_after_tick(engine, now, tenant_ids)


def _deliver_webhooks(engine: Engine, now: datetime, tenant_ids: list[int]) -> int:
    from partnercast.web.webhooks_cli import deliver_after_tick

    return deliver_after_tick(engine, now, tenant_ids)


def _webhooks() -> None:
    from partnercast.web.webhooks_cli import register

    register(app)


def _accounts() -> None:
    from partnercast.accounts_cli import register

    register(app)


def _api_tokens() -> None:
    from partnercast.web.api.tokens_cli import register

    register(app)


def _users() -> None:
    from partnercast.web.users_cli import register

    register(app)


def _own() -> None:
    app.command("serve")(serve)
    app.command("demo")(demo)
    app.command("plugins")(plugins_command)
    app.command("worker")(worker)
    app.command("queue")(queue)
    app.command("status")(status)


MOUNTS = {
    _tenants: ("tenants", "partners", "contacts", "segments"),
    _concierge: ("review", "reviews", "tasks", "concierges"),
    _funnel: ("score", "report", "leads", "crm", "spend", "metrics"),
    _campaigns: ("campaign",),
    _workflow: (
        "enroll",
        "enrollments",
        "customise",
        "submit",
        "approve",
        "request-changes",
        "decline",
        "auto-approve",
        "preview",
        "tick",
        "schedule",
        "cycle",
    ),
    _accounts: ("accounts",),
    _users: ("users",),
    _api_tokens: ("api-tokens",),
    _webhooks: ("webhooks",),
    _own: ("serve", "demo", "plugins", "worker", "queue", "status"),
}
"""Who mounts which commands, in the order --help lists them (tests/test_cli_lazy.py
holds it to what each mounts). A command line naming one of them mounts only that one:
importing every folder's commands cost a second of CPU before any command ran."""


EXTENDS = {_concierge: ("partners",), _funnel: ("partners",), _users: ("partners",)}
"""Groups of another folder that a folder adds subcommands to (``partners readiness``,
``partners link``, ``partners invite``): a command line naming the group mounts those
folders too."""


_mounted: set[Callable[[], None]] = set()


def _mount_subcommands(only: str | None = None) -> None:
    """Mount every folder's commands, then the plugins'; or, when ``only`` names a
    built-in command, only the folder that has it (a command's run or its --help).
    Each folder is mounted once, whatever is asked after."""
    for mount, names in MOUNTS.items():
        wanted = only is None or only in names or only in EXTENDS.get(mount, ())
        if mount not in _mounted and wanted:
            mount()
            _mounted.add(mount)
    _place_in_panels(app, PANELS)
    if only is not None or _plugins_mounted():
        return
    from partnercast.plugins.host import provide_host
    from partnercast.plugins.manager import load_plugins

    provide_host(_opened_host)  # plugins' commands reach the engine through it
    # Loaded for their commands only: default_plugins() would also subscribe them to the
    # event bus, which imports SQLAlchemy and the models (a third of a second of
    # `partnercast --help`); a plugin's command that opens the engine gets those.
    load_plugins().register_commands(app)
    _place_in_panels(app, {PLUGINS_PANEL: ()})
    app._partnercast_mounted = True  # type: ignore[attr-defined]  # our marker, not Typer's


@contextmanager
def _opened_host() -> Iterator[Host]:
    """web.host.opened_host, imported when a plugin's command opens the engine."""
    from partnercast.web.host import opened_host

    with opened_host() as host:
        yield host


def _plugins_mounted() -> bool:
    return bool(getattr(app, "_partnercast_mounted", False))


def _place_in_panels(root: typer.Typer, panels: dict[str, tuple[str, ...]]) -> None:
    """Give every command and group of ``root`` that has no help panel yet the panel that
    lists its name; a panel that lists no names takes all of them. A built-in command
    missing from :data:`PANELS` is a mistake of this module: tests/test_cli_help.py fails."""
    panel_of = {name: panel for panel, names in panels.items() for name in names}
    catch_all = next((panel for panel, names in panels.items() if not names), None)
    infos: list[CommandInfo | TyperInfo] = [*root.registered_commands, *root.registered_groups]
    for info in infos:
        own = getattr(getattr(info, "typer_instance", None), "info", None)
        if isinstance(info.rich_help_panel, str) or isinstance(
            getattr(own, "rich_help_panel", None), str
        ):
            continue  # named by whoever mounted it
        name = info.name or _callback_name(info.callback)
        panel = panel_of.get(name, catch_all)
        if panel is None:
            raise RuntimeError(f"the command {name!r} is in no help panel: add it to PANELS")
        info.rich_help_panel = panel


def _callback_name(callback: Any) -> str:
    """The command name Typer derives from a function (``auto_approve`` -> auto-approve)."""
    return str(getattr(callback, "__name__", "")).replace("_", "-")


def build_app(command: str | None = None) -> typer.Typer:
    """The root app with every folder's commands mounted (idempotent), or only what
    ``command`` needs when it names a built-in one; and the engine composed: the funnel's
    rollups kept in step with every event a command records (installed before the first
    engine a command opens, so that a command's help imports no funnel)."""
    compose_before_open(_keep_rollups)
    only = command if any(command in names for names in MOUNTS.values()) else None
    if not _plugins_mounted():
        _mount_subcommands(only)
    return app


def _keep_rollups() -> None:
    """Compose the engine: the funnel's rollups and the outgoing webhooks' deliveries are
    written in the flush that records what they count or report."""
    from partnercast.funnel.rollups import install
    from partnercast.web.outgoing_events import install as report_to_webhooks

    install()
    report_to_webhooks()


def _command_in(args: list[str]) -> str | None:
    """The command a command line names (its first word that is not an option)."""
    for arg in args:
        if not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Console-script entry point: mounts only the folder the command needs."""
    run_cli(build_app(_command_in(sys.argv[1:])))
