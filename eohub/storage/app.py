"""``eohub-storage-sampler``: measure storage where it is, and post it to accounting.

One program for the three samplers (``--sampler=filesystem|local|kubernetes``). Each
round measures (see the sampler's module), posts the samples (:mod:`eohub.storage.poster`)
and logs one line; ``--once`` runs one round and exits with status 1 if anything could
not be measured or posted (for cron and systemd timers), otherwise a round starts every
``interval`` seconds. SIGTERM or SIGINT stops a walk under way at its next pause (its
round is not posted) or lets the request under way finish, then exits.

The process runs at a lower CPU priority (``niceness``), which on Linux also lowers its
I/O priority unless one is set (``ionice -c3``, systemd ``IOSchedulingClass=idle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode, default
from traitlets.config import Application, Configurable

from eohub import logs
from eohub._version import __version__
from eohub.domain.accounting.access import SERVICE_NAME
from eohub.json_logs import environment_logging_config
from eohub.logs import get_logger
from eohub.storage.filesystem import DirectorySampler, FilesystemSampler
from eohub.storage.kube_sources import endpoint
from eohub.storage.kubernetes import KubernetesSampler
from eohub.storage.local import LocalWorkspaceSampler
from eohub.storage.poster import Poster
from eohub.storage.sampler import Sampler
from eohub.storage.walk import WalkStopped

log = get_logger(__name__)

SAMPLERS = ("filesystem", "local", "kubernetes")
TOKEN_VARIABLES = ("EOHUB_STORAGE_TOKEN", "JUPYTERHUB_API_TOKEN")


#: Every sampler's class, for ``--help-all`` and the config reference.
SAMPLER_CLASSES: list[type[Configurable]] = [
    Sampler,
    DirectorySampler,
    FilesystemSampler,
    LocalWorkspaceSampler,
    KubernetesSampler,
]


class StorageSamplerApp(Application):
    """Measures users' and groups' storage and posts it to the accounting service."""

    name = "eohub-storage-sampler"
    version = __version__
    description = (
        "eohub storage sampler: measure how much each user and group stores, and post "
        "it to the accounting service."
    )
    aliases = {  # noqa: RUF012 - traitlets reads a dict
        "sampler": "StorageSamplerApp.sampler",
        "config": "StorageSamplerApp.config_file",
        "interval": "StorageSamplerApp.interval",
        "accounting-url": "StorageSamplerApp.accounting_url",
        "log-level": "Application.log_level",
    }
    flags = {  # noqa: RUF012
        "once": ({"StorageSamplerApp": {"once": True}}, "Run one round, then exit."),
    }

    sampler = CaselessStrEnum(
        SAMPLERS,
        "filesystem",
        help="""What to sample: ``filesystem`` (folders under ``FilesystemSampler.roots``:
        an NFS home server), ``local`` (the workspaces of ``QuotaLocalSpawner``) or
        ``kubernetes`` (users' volume claims, ``KubernetesSampler``).""",
    ).tag(config=True)

    accounting_url = Unicode(
        help="""The accounting service: its own URL (``http://127.0.0.1:10101``; the
        service prefix ``/services/eohub-accounting/`` is added), or a URL with a path,
        taken as the service's prefix (through the hub's proxy:
        ``https://hub.example.org/services/eohub-accounting/``). Default:
        ``$EOHUB_ACCOUNTING_URL``, else ``http://127.0.0.1:10101``. The token is
        ``$EOHUB_STORAGE_TOKEN``, else ``$JUPYTERHUB_API_TOKEN`` (a managed service's):
        a hub token with the scopes ``custom:eohub-accounting:ingest`` and
        ``access:services!service=eohub-accounting``.""",
    ).tag(config=True)

    @default("accounting_url")
    def _accounting_url_default(self) -> str:
        return os.environ.get("EOHUB_ACCOUNTING_URL", "http://127.0.0.1:10101")

    interval = Integer(
        3600,
        min=1,
        help="Seconds from the start of one round to the start of the next.",
    ).tag(config=True)

    once = Bool(
        False,
        help="""Run one round and exit: status 0 if everything was measured and posted,
        1 if not (for cron or a systemd timer).""",
    ).tag(config=True)

    niceness = Integer(
        10,
        min=0,
        max=19,
        help="""Added to the process's CPU niceness at start (0: unchanged). On Linux
        the I/O priority follows it unless one is set with ``ionice``.""",
    ).tag(config=True)

    post_timeout = Float(30.0, help="Seconds one POST to the accounting service may take.").tag(
        config=True
    )

    post_retries = Integer(
        5,
        min=0,
        help="""How many times a batch that got no answer (or a 5xx) is sent again, with
        pauses of ``post_backoff`` seconds doubling each time (at most 300).""",
    ).tag(config=True)

    post_backoff = Float(2.0, min=0.0, help="Seconds before the first retry of a batch.").tag(
        config=True
    )

    ca_file = Unicode(
        "", help="A CA bundle to verify the accounting service's HTTPS certificate with."
    ).tag(config=True)

    config_file = Unicode(
        help="""The config file to load (Python, like ``jupyterhub_config.py``):
        ``$EOHUB_STORAGE_CONFIG``, else ``eohub_storage_config.py`` in the working
        directory. A missing default file is fine; a missing named one is an error.""",
    ).tag(config=True)

    @default("config_file")
    def _config_file_default(self) -> str:
        return os.environ.get("EOHUB_STORAGE_CONFIG", "eohub_storage_config.py")

    @default("log_level")
    def _log_level_default(self) -> int:
        return logging.INFO

    # JupyterHub's line prefix, so the lines read like the hub's in its log.
    @default("log_format")
    def _log_format_default(self) -> str:
        return "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s"

    @default("log_datefmt")
    def _log_datefmt_default(self) -> str:
        return "%Y-%m-%d %H:%M:%S"

    # JSON lines when $EOHUB_LOG_FORMAT=json, which the hub's json_logging(c) sets on
    # this managed service (set it yourself where the sampler runs on its own).
    @default("logging_config")
    def _logging_config_default(self) -> dict[str, Any]:
        return environment_logging_config()

    def __init__(self, **kwargs: Any) -> None:
        self.classes = list(SAMPLER_CLASSES)
        super().__init__(**kwargs)
        logs.attach(self.log)

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        named = "EOHUB_STORAGE_CONFIG" in os.environ or "config_file" in self.cli_config.get(
            "StorageSamplerApp", {}
        )
        if os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
        elif named:
            log.critical("The config file {path} does not exist", path=self.config_file)
            self.exit(1)
        self.update_config(self.cli_config)

    def storage_url(self) -> str:
        """Where samples are posted: the service's ``api/storage``."""
        base = self.accounting_url.rstrip("/")
        if urlsplit(base).path in ("", "/"):
            base += f"/services/{SERVICE_NAME}"
        return base + "/api/storage"

    def make_sampler(self) -> Sampler:
        kinds: dict[str, type[Sampler]] = {
            "filesystem": FilesystemSampler,
            "local": LocalWorkspaceSampler,
            "kubernetes": KubernetesSampler,
        }
        return kinds[self.sampler.lower()](parent=self)

    def start(self) -> None:
        token = next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), "")
        if not token:
            log.critical(
                "No token to post with: set EOHUB_STORAGE_TOKEN (a hub API token with "
                "the scopes custom:eohub-accounting:ingest and "
                "access:services!service=eohub-accounting)"
            )
            self.exit(1)
        if self.niceness:
            # Before any thread starts: on Linux each thread has its own niceness, and
            # the walk's worker threads inherit this one.
            os.nice(self.niceness)
        self.exit(asyncio.run(self.run(token)))

    async def run(self, token: str) -> int:
        """Rounds until stopped (or one, with ``once``); the exit status."""
        sampler = self.make_sampler()
        sampler.api_token = token
        poster = Poster(
            url=self.storage_url(),
            token=token,
            timeout=self.post_timeout,
            retries=self.post_retries,
            backoff=self.post_backoff,
            ca_file=self.ca_file,
        )
        stopping = asyncio.Event()

        def stop() -> None:
            stopping.set()
            sampler.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        log.info(
            "eohub-storage-sampler {version}: the {kind} sampler, posting to {url}, {schedule}",
            version=__version__,
            kind=self.sampler,
            url=endpoint(poster.url),  # never a user:password@ of accounting_url
            schedule="one round" if self.once else f"a round every {self.interval} s",
        )
        ok = True
        while not stopping.is_set():
            began = time.monotonic()
            ok = await self.round(sampler, poster, stopping)
            if self.once:
                break
            wait = max(0.0, self.interval - (time.monotonic() - began))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), wait)
        log.info("eohub-storage-sampler stopped")
        if stopping.is_set() and not self.once:
            return 0  # asked to stop: the next start measures again
        return 0 if ok else 1

    async def round(self, sampler: Sampler, poster: Poster, stopping: asyncio.Event) -> bool:
        """Measure and post once; whether everything was measured and posted."""
        began = time.monotonic()
        sampler.incomplete = False
        try:
            samples = await sampler.measure()
        except WalkStopped:
            log.info("Stopping: the round under way is not posted")
            return False
        except Exception:
            log.exception("The storage round failed; the next round tries again")
            return False
        posted = await poster.post(samples, stopping)
        log.info(
            "Storage round: {samples} samples, {bytes} bytes in total, {seconds} s",
            samples=len(samples),
            bytes=sum(s.bytes for s in samples),
            seconds=round(time.monotonic() - began, 1),
            accepted=posted.accepted,
            duplicates=posted.duplicates,
            dropped=posted.dropped,
            failed=posted.failed,
        )
        return posted.ok and not sampler.incomplete


def main(argv: list[str] | None = None) -> None:
    logs.run_logged(StorageSamplerApp.instance(), argv, "eohub-storage-sampler")


if __name__ == "__main__":
    main(sys.argv[1:])

__all__ = ["SAMPLERS", "StorageSamplerApp", "main"]
