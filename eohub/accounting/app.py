"""``eohub-accounting``: the accounting hub-service application.

Three tiers, as jupyterhub-idle-culler has them: pure logic in :mod:`eohub.domain`, the
store and workers taking plain arguments, and this traitlets ``Application`` mapping
config and CLI options onto them. Run it as a managed JupyterHub service (the drop-in
``jupyterhub_config.d/30-eohub-accounting.py`` registers it) or as an external one.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import sys
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuth
from jupyterhub.traitlets import ByteSpecification
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import (
    Bool,
    CaselessStrEnum,
    Dict,
    Float,
    Integer,
    TraitError,
    Unicode,
    default,
    observe,
)

from eohub._version import __version__
from eohub.access_log import service_log_request
from eohub.accounting.database_app import DatabaseApp, UpgradeDBApp
from eohub.accounting.exports.config import XDMoDExport, warn_if_unassigned_pi_is_a_group
from eohub.accounting.scopes import ADMIN, ADMINS_ROLE, SERVICE_NAME
from eohub.accounting.service.api import api_routes
from eohub.accounting.service.context import CONTEXT_SETTING, LoopSettings, ServiceContext
from eohub.accounting.service.handlers import OAuthCallbackHandler
from eohub.accounting.service.metrics import Metrics
from eohub.accounting.service.workers import connect_hub, start_workers
from eohub.accounting.storage_settings import StorageSettings
from eohub.adapters.accounting_db import (
    AccountingStore,
    OutdatedSchemaError,
    ensure_schema,
)
from eohub.adapters.accounting_db.schema import UPGRADE_COMMAND
from eohub.adapters.accounting_db.store_executors import share_the_interpreter
from eohub.adapters.accounting_db.writer_process import WriterProcess, in_memory_sqlite
from eohub.domain.accounting.events import DEFAULT_MAX_CLOCK_SKEW, EventError
from eohub.domain.accounting.requests import MAX_BODY_BYTES, parse_group_update
from eohub.json_logs import environment_logging_config
from eohub.logs import get_logger, run_logged

log = get_logger(__name__)

#: Seconds a stopping service gives the requests under way: well within the 10 s that
#: JupyterHub gives a managed service between its SIGINT and its SIGTERM.
STOP_GRACE_SECONDS = 5


class AccountingService(DatabaseApp, StorageSettings):
    """The accounting service: REST API, pages, metrics, reconcile and enforcement loops."""

    name = "eohub-accounting"
    version = __version__
    description = (
        "eohub accounting: an exact usage ledger, group quotas and reports for JupyterHub."
    )
    classes = [DatabaseApp]  # noqa: RUF012 - traitlets reads a list
    subcommands = {  # noqa: RUF012
        "upgrade-db": (UpgradeDBApp, UpgradeDBApp.description),
        "export": (
            "eohub.accounting.exports.cli.ExportApp",
            "Export sessions, usage or XDMoD records.",
        ),
    }
    aliases = {  # noqa: RUF012
        **DatabaseApp.aliases,
        "url": "AccountingService.url",
        "reconcile-interval": "AccountingService.reconcile_interval",
        "enforcement": "AccountingService.enforcement",
    }

    url = Unicode(
        help="""The URL the service listens on, e.g. ``http://127.0.0.1:10101``.

        Defaults to ``$JUPYTERHUB_SERVICE_URL``, which JupyterHub sets for a managed
        service from the ``url`` in its service entry.
        """,
    ).tag(config=True)

    @default("url")
    def _url_default(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    service_prefix = Unicode(
        help="URL prefix of the service behind the hub's proxy. Default: "
        "``$JUPYTERHUB_SERVICE_PREFIX`` or ``/services/eohub-accounting/``.",
    ).tag(config=True)

    @default("service_prefix")
    def _prefix_default(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")

    groups = Dict(
        help="""Groups to create or update at start-up, as the admin API would.

        Keys are group names; values hold ``display_name``, ``allocation``
        (``month``, ``quarter``, ``year`` or ``rolling:N``), ``pis`` (user names) and
        ``quotas`` keyed by ``""`` (the whole group), ``"*"`` (each member) or a user
        name, with ``core_hours``, ``gpu_hours``, ``memory_gib_hours``, ``max_servers``,
        ``max_cores`` and ``storage_bytes``. A bad entry stops start-up with a message
        naming the key. Changes made later through the API stand until the next start.
        """,
    ).tag(config=True)

    reconcile_interval = Integer(
        60,
        help="Seconds between comparisons of the hub's running servers with open "
        "sessions (0 turns the reconcile loop off).",
    ).tag(config=True)

    reconcile_fallback_group = Unicode(
        "",
        help="Group charged for a running server that has no session and whose "
        "user_options name no known group. Empty: such servers are logged once, not charged.",
    ).tag(config=True)

    reconcile_default_cpu = Float(
        1.0, help="CPUs charged for a server reconcile opens, when its user_options don't say."
    ).tag(config=True)

    reconcile_default_memory = ByteSpecification(
        0, help="Memory charged for a server reconcile opens, when its user_options don't say."
    ).tag(config=True)

    reconcile_default_gpus = Integer(
        0, help="GPUs charged for a server reconcile opens, when its user_options don't say."
    ).tag(config=True)

    reconcile_open_after = Integer(
        120,
        help="Seconds a server must have run before reconcile opens a session for it, so "
        "the hub's own start event (with the real group and size) arrives first.",
    ).tag(config=True)

    reconcile_close_after = Integer(
        120,
        help="Seconds a server must have been missing from the hub (counted from the first "
        "round that missed it) before reconcile closes its session, so that the hub's own "
        "stop event, with the real stop time, arrives first, even from the hub's outbox "
        "after the service was down. 0 closes at the first round that misses it.",
    ).tag(config=True)

    enforcement_interval = Integer(
        60,
        help="Seconds between enforcement rounds (budgets, session limits) when "
        "``reconcile_interval`` is 0.",
    ).tag(config=True)

    writer_process = Bool(
        True,
        help="""Apply event batches and other writes in a child process of the service.

        A batch of long sessions is seconds of CPU work. In a child process, at a lower
        CPU priority, it does not slow the service's quota checks, which a user starting
        a server waits for (``benchmarks/accounting.py`` measures them during an
        ingest). Turn off to keep everything in one process (one thread then writes).
        """,
    ).tag(config=True)

    hub_api_timeout = Float(30.0, help="Timeout, in seconds, of each hub API request.").tag(
        config=True
    )

    hub_api_concurrency = Integer(
        10, help="Most hub API requests in flight at once (reconcile, enforcement)."
    ).tag(config=True)

    enforcement = CaselessStrEnum(
        ["off", "warn", "stop"],
        "off",
        help="""What to do when a group's budget runs out while its servers run.

        ``off``: nothing (quota checks still refuse new servers). ``warn``: log and show
        the warning on the usage pages. ``stop``: warn, then stop the group's servers
        through the hub API after ``enforcement_grace_period`` seconds.
        """,
    ).tag(config=True)

    enforcement_grace_period = Integer(
        900, help="Seconds between the budget-spent warning and stopping servers."
    ).tag(config=True)

    session_limits_enforcement = Bool(
        True,
        help="""Stop servers idle past their idle limit or running past their maximum
        duration, through the hub API, and record the stop as ``idle`` or ``max_duration``.

        Sessions carry the limits of their environment from the hub's launch config
        (``idle_timeout``, ``max_duration``, the spawner's ``session_limits``). It runs
        whatever ``enforcement`` says, on the same loop (every ``reconcile_interval``
        seconds, or ``enforcement_interval`` when reconcile is off). Turning this off
        leaves those limits unenforced (on Kubernetes only the pod's deadline backstop
        remains); run jupyterhub-idle-culler instead if you want idle servers stopped.
        """,
    ).tag(config=True)

    max_duration_warning = Integer(
        900,
        min=0,
        help="Seconds before a server reaches its maximum duration that the usage pages "
        "and the log warn of the stop (0: no warning). The stop time itself never moves.",
    ).tag(config=True)

    max_clock_skew = Integer(
        int(DEFAULT_MAX_CLOCK_SKEW.total_seconds()),
        min=0,
        help="Seconds an event's or storage sample's time may be ahead of this service's "
        "clock. Later times are refused with a 400 naming the field (the hub's client "
        "dead-letters them): a server cannot stop in the future. Raise it only if the "
        "hub's and the service's clocks cannot be kept in sync (run NTP on both).",
    ).tag(config=True)

    hub_admins_are_admins = Bool(
        False,
        help="Deprecated; grants nothing. The service trusts only the scopes a token "
        "carries, never the hub's admin flag. Drop-in 30 gives the hub's admins the "
        "custom:eohub-accounting:admin scope through the role eohub-accounting-admins "
        "(its users are Authenticator.admin_users, its groups the authenticator's "
        "admin_groups); give others the scope with a role of your own.",
    ).tag(config=True)

    @observe("hub_admins_are_admins")
    def _warn_hub_admins_are_admins(self, change: dict[str, Any]) -> None:
        if change["new"]:
            log.warning(
                "AccountingService.hub_admins_are_admins is deprecated and grants nothing: "
                "accounting admins are those whose token carries {scope}. Drop-in "
                "30-eohub-accounting.py grants it to the hub's admins through the role "
                "{role!r}; remove the setting.",
                scope=ADMIN,
                role=ADMINS_ROLE,
            )

    authenticate_metrics = Bool(
        True,
        help="Require a token with custom:eohub-accounting:read (or admin), and the "
        "service's access scope, for /metrics. Turn off only where the metrics port is "
        "private: /metrics then answers anyone.",
    ).tag(config=True)

    # JSON lines when $EOHUB_LOG_FORMAT=json, which the hub's json_logging(c) sets on
    # this managed service (set it yourself where the service runs on its own). A
    # logging_config in the service's config file replaces this default.
    @default("logging_config")
    def _logging_config_default(self) -> dict[str, Any]:
        return environment_logging_config()

    cookie_secret = Unicode(
        help="Secret for the pages' OAuth cookies; random per start by default "
        "(users then log in again after a restart). ``$EOHUB_ACCOUNTING_COOKIE_SECRET``.",
    ).tag(config=True)

    @default("cookie_secret")
    def _cookie_secret_default(self) -> str:
        return os.environ.get("EOHUB_ACCOUNTING_COOKIE_SECRET") or secrets.token_hex(32)

    def init_store(self) -> None:
        self.engine = self.open_engine()
        try:
            ensure_schema(self.engine)
        except OutdatedSchemaError as e:
            log.critical("{error}", error=e)
            self.exit(1)
        writer = None
        if self.writer_process and in_memory_sqlite(self.db_url):
            log.warning(
                "An in-memory SQLite database is this process's alone: writing in the "
                "service's own process (AccountingService.writer_process ignored)"
            )
        elif self.writer_process:
            writer = WriterProcess(self.db_url)
            writer.pid()  # start it now: a child that cannot start stops start-up
        age = self.storage_policy().sample_max_age
        self.store = AccountingStore(
            self.engine, writer_process=writer, storage_sample_max_age=age
        )
        share_the_interpreter()  # quota checks stay quick while a long report is built
        self.metrics = Metrics(self.store)

    def init_groups(self) -> None:
        for name, spec in self.groups.items():
            try:
                update = parse_group_update(spec)
            except EventError as e:
                log.critical(
                    "AccountingService.groups[{name!r}] is invalid: {errors}",
                    name=name,
                    errors="; ".join(f"{k}: {v}" for k, v in e.errors.items()),
                )
                self.exit(1)
            self.store.put_group(
                name,
                display_name=update.display_name,
                allocation=update.allocation,
                pis=update.pis,
                quotas=update.quotas,
            )

    def loop_settings(self) -> LoopSettings:
        """The reconcile and enforcement settings, as the loops take them."""
        return LoopSettings.of(self)

    def build_context(self) -> ServiceContext:
        """The one context the handlers and workers share (after :meth:`initialize`).

        The enforcers are made here, before any loop starts, so the pages can show their
        warnings from the first request.
        """
        loops = self.loop_settings()
        try:
            # Read once here, so a bad export setting stops the start, naming the key.
            exports = XDMoDExport(parent=self)
        except TraitError as e:
            log.critical("The XDMoDExport config is invalid: {error}", error=e)
            self.exit(1)
        warn_if_unassigned_pi_is_a_group(self.store, exports.storage_unassigned_pi)
        hub, enforcer, lifetimes = connect_hub(self.store, loops)
        return ServiceContext(
            store=self.store,
            metrics=self.metrics,
            prefix=self.service_prefix,
            max_clock_skew=timedelta(seconds=self.max_clock_skew),
            exports=exports,
            authenticate_metrics=self.authenticate_metrics,
            loops=loops,
            hub=hub,
            enforcer=enforcer,
            lifetimes=lifetimes,
            storage=self.storage_policy(),
        )

    def make_app(self, context: ServiceContext) -> web.Application:
        prefix = context.prefix
        hub_auth = HubOAuth(parent=self, cache_max_age=60)
        routes: list[Any] = [
            *api_routes(prefix),
            (prefix + "oauth_callback", OAuthCallbackHandler),
        ]
        routes.extend(self.extra_routes(prefix))
        # The handlers' one way to the service: the context, never this application.
        settings: dict[str, Any] = {CONTEXT_SETTING: context}
        return web.Application(
            routes,
            hub_auth=hub_auth,
            cookie_secret=self.cookie_secret,
            xsrf_cookies=False,
            log_function=service_log_request,
            **settings,
        )

    def extra_routes(self, prefix: str) -> list[Any]:
        """Pages, exports and metrics (registered by their modules)."""
        from eohub.accounting.service.routes import extra_routes

        return extra_routes(prefix)

    def initialize_subcommand(self, subc: str, argv: Any = None) -> None:
        # export and upgrade-db (DatabaseApps) log like the service: JSON when asked.
        self.config.DatabaseApp.setdefault("logging_config", environment_logging_config())
        super().initialize_subcommand(subc, argv)

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        if self.subapp is not None:
            return
        self.init_store()
        self.init_groups()

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        asyncio.run(self.serve())

    async def serve(self) -> None:
        """Listen, run the background loops, and stop cleanly on SIGTERM/SIGINT."""
        import signal

        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        parts = urlsplit(self.url)
        context = self.build_context()
        # Tornado would read up to 100 MB before a handler could answer 413: a body
        # declared (or sent) past twice the API's limit is refused as it arrives.
        server = HTTPServer(
            self.make_app(context), xheaders=True, max_body_size=2 * MAX_BODY_BYTES
        )
        server.listen(parts.port or 80, parts.hostname or "127.0.0.1")
        log.info(
            "eohub-accounting {version} listening on {url}{prefix} (database {database})",
            version=__version__,
            url=self.url,
            prefix=context.prefix,
            database=self.safe_url(),
        )
        workers = start_workers(context)
        # Everything loaded so far (the modules of JupyterHub, SQLAlchemy and Tornado,
        # the config) lives as long as the process. Frozen, the collector stops walking
        # it on every full collection, which otherwise stalls a request now and then.
        gc.collect()
        gc.freeze()
        await stopping.wait()
        log.info("Stopping eohub-accounting")
        server.stop()
        # The requests under way (a batch being applied) are answered before the database
        # closes: cut off, they would be 500s, and the hub's client would log a failure.
        if not await context.in_flight.drained(STOP_GRACE_SECONDS):
            log.warning(
                "Stopping with {count} requests unanswered after {seconds} s",
                count=context.in_flight.count,
                seconds=STOP_GRACE_SECONDS,
            )
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self.store.close()
        self.engine.dispose()


def main(argv: list[str] | None = None) -> None:
    run_logged(AccountingService.instance(), argv, "eohub-accounting")


if __name__ == "__main__":
    main(sys.argv[1:])

__all__ = ["UPGRADE_COMMAND", "AccountingService", "main"]
