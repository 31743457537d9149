"""Spawn storms: many users start servers at once on a real hub, then stop them.

Shared by ``benchmarks/hub_storm.py`` (speed) and ``tests/spawner/test_storm_hub.py``
(correctness). The **plain** hub has no drop-ins and JupyterHub's
``SimpleLocalProcessSpawner``; the **eohub** hub has the drop-ins (the managed accounting
service, on the caller's database) and ``QuotaLocalSpawner``, every user charged to the
group ``class``, which has quota rows, so each spawn gets a real quota check and sends a
start and a stop event. Otherwise they are alike, down to the stand-in single-user
server (:data:`STANDIN_SOURCE`), so a spawn measures the hub, not JupyterLab.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupyterhub
import requests

from .hub import SERVICE_NAME, Hub, start_hub

GROUP = "class"
# Both hubs get the same empty body: the plain spawner would warn about options it does
# not know, and eohub picks the default environment, its one size and the user's one group.
SPAWN_OPTIONS: dict[str, Any] = {}
# The hubs answer a spawn's POST and a stop's DELETE once done if within this many
# seconds: longer than a spawn may take, so the POST alone times a spawn.
SLOW_S = 300
PROBE_INTERVAL_S = 0.1
ACCOUNTING_GROUPS = {
    GROUP: {"allocation": "month", "quotas": {"": {"core_hours": 1e6}, "*": {"max_servers": 2}}},
}

STANDIN_SOURCE = '''\
"""A stand-in single-user server: any GET gets 200 JSON. Standard library only."""
import os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlsplit

BODY = b'{"standin": true}'

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("X-JupyterHub-Version", VERSION)
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format, *args):
        pass

for number in (signal.SIGINT, signal.SIGTERM):
    signal.signal(number, lambda *_: sys.exit(0))
url = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])  # where the hub expects it; args ignored
HTTPServer((url.hostname or "127.0.0.1", url.port), Handler).serve_forever()
'''


def write_standin(workdir: Path) -> list[str]:
    """Write the stand-in server into ``workdir``; the command that runs it.

    ``-I -S``: no site-packages and no user paths, so Python starts in ~15 ms.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "standin_server.py"
    path.write_text(f"VERSION = {jupyterhub.__version__!r}\n" + STANDIN_SOURCE)
    return [sys.executable, "-I", "-S", str(path)]


def user_names(count: int) -> list[str]:
    return [f"storm{i:04d}" for i in range(count)]


def hub_config(kind: str, workdir: Path, users: Sequence[str], command: list[str]) -> str:
    """The ``plain`` or ``eohub`` hub's config: the same users, group, timeouts and
    server command; eohub adds its spawner with one environment and one size."""
    home = f"{workdir}/home/{{username}}"
    common = f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.load_groups = {{{GROUP!r}: {{"users": {list(users)!r}}}}}
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": {SLOW_S}, "slow_stop_timeout": {SLOW_S}}}
c.JupyterHub.load_roles.append(
    {{"name": "storm-metrics", "scopes": ["read:metrics"], "services": [{SERVICE_NAME!r}]}}
)
c.Spawner.start_timeout = c.Spawner.http_timeout = 120
c.Spawner.cmd = {command!r}
c.Spawner.args = []
"""
    if kind == "plain":
        return f"""{common}
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r}
"""
    environment = {"display_name": "Stand-in", "sizes": ["small"], "command": command}
    return f"""{common}
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.fallback_workdir_template = {home!r}
c.QuotaLocalSpawner.launch_sizes = {{"small": {{"display_name": "S", "cpu": 0.5, "memory": "1G"}}}}
c.QuotaLocalSpawner.launch_environments = {{"lab": {environment!r}}}
c.QuotaLocalSpawner.charge_groups = [{GROUP!r}]
from eohub.spawner import check_hub_config
check_hub_config(c)
"""


def start_plain_hub(workdir: Path, users: Sequence[str]) -> Hub:
    command = write_standin(workdir)
    return start_hub(workdir, hub_config("plain", workdir, users, command), load_dropins=False)


def start_eohub_hub(
    workdir: Path, users: Sequence[str], db_url: str, *, extra_config: str = ""
) -> Hub:
    """The eohub hub with its accounting service on ``db_url``, once the service answers.

    ``extra_config`` is appended to the hub's config (the benchmark keeps the defaults).
    """
    from tests.accounting.service_support import Accounting

    command = write_standin(workdir)
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
    )
    hub = start_hub(
        workdir,
        hub_config("eohub", workdir, users, command) + extra_config,
        env={"EOHUB_ACCOUNTING_DB_URL": db_url},
    )
    try:
        Accounting(hub).wait_ready(timeout=90)
    except BaseException:
        hub.process.stop(timeout=20)
        raise
    return hub


def stop_hub(hub: Hub) -> None:
    """Stop the hub, then any stand-in it left running (they run in sessions of their own)."""
    hub.process.stop(timeout=30)
    marker = str(hub.workdir / "standin_server.py").encode()
    for entry in Path("/proc").glob("[0-9]*"):
        with suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] if ordered else 0.0


class StormError(RuntimeError):
    """A spawn or a stop failed; the message says how."""


@dataclass
class StormResult:
    """What one storm measured: per-spawn seconds, failures with reasons, probe times."""

    users: list[str]
    spawn_s: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    probe_ms: list[float] = field(default_factory=list)
    probe_errors: int = 0
    stop_failures: dict[str, str] = field(default_factory=dict)
    still_listed: list[str] = field(default_factory=list)
    storm_s: float = 0.0
    stops_s: float = 0.0

    @property
    def spawned(self) -> list[str]:
        return [u for u in self.users if u in self.spawn_s]

    def summary(self) -> dict[str, Any]:
        seconds = list(self.spawn_s.values())
        reasons = Counter(self.failures.values())
        return {
            "spawn_p50_s": round(percentile(seconds, 0.5), 3),
            "spawn_p99_s": round(percentile(seconds, 0.99), 3),
            "spawn_max_s": round(max(seconds, default=0.0), 3),
            "probe_p50_ms": round(percentile(self.probe_ms, 0.5), 1),
            "probe_p99_ms": round(percentile(self.probe_ms, 0.99), 1),
            "probes": len(self.probe_ms),
            "probe_errors": self.probe_errors,
            "failed": len(self.failures),
            "failure_reasons": dict(reasons.most_common(5)),
            "stop_failures": len(self.stop_failures),
            "still_listed": len(self.still_listed),
            "storm_s": round(self.storm_s, 2),
            "stops_s": round(self.stops_s, 2),
        }


class Storm:
    """Spawn ``users`` on ``hub`` with at most ``in_flight`` at a time, then stop them.

    ``on_start()`` is called as the first spawn is sent, and ``on_spawn_done(n)`` (from
    a worker thread) after the n-th spawn ended, ready or failed: for a caller that
    injects faults part-way through.
    """

    def __init__(
        self,
        hub: Hub,
        users: Sequence[str],
        *,
        in_flight: int = 50,
        on_start: Callable[[], None] | None = None,
        on_spawn_done: Callable[[int], None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.hub = hub
        self.on_start = on_start
        self.options = SPAWN_OPTIONS if options is None else options
        self.in_flight = in_flight
        self.on_spawn_done = on_spawn_done
        self.result = StormResult(list(users))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._done = 0

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"token {self.hub.token}"
        return session

    def _api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", SLOW_S + 30)
        return self._session().request(method, f"{self.hub.url}/hub/api{path}", **kwargs)

    def run(self) -> StormResult:
        self.create_users()
        stop_probe = threading.Event()
        probe = threading.Thread(target=self._probe, args=(stop_probe,), daemon=True)
        probe.start()
        started = time.perf_counter()
        if self.on_start is not None:
            self.on_start()
        try:
            with ThreadPoolExecutor(self.in_flight, thread_name_prefix="spawn") as pool:
                list(pool.map(self._spawn_one, self.result.users))
        finally:
            self.result.storm_s = time.perf_counter() - started
            stop_probe.set()
            probe.join()
        started = time.perf_counter()
        with ThreadPoolExecutor(self.in_flight, thread_name_prefix="stop") as pool:
            list(pool.map(self._stop_one, self.result.users))
        self.result.still_listed = self.wait_none_listed()
        self.result.stops_s = time.perf_counter() - started
        return self.result

    def create_users(self) -> None:
        response = self._api("POST", "/users", json={"usernames": self.result.users}, timeout=60)
        # 409: they all exist already (the hub's load_groups created them).
        if response.status_code not in (201, 409):
            raise StormError(f"creating users: HTTP {response.status_code} {response.text}")

    def _spawn_one(self, user: str) -> None:
        try:
            seconds = self._spawn(user)
        except (StormError, requests.RequestException) as e:
            with self._lock:
                self.result.failures[user] = str(e)[:200]
        else:
            with self._lock:
                self.result.spawn_s[user] = seconds
        with self._lock:
            self._done += 1
            done = self._done
        if self.on_spawn_done is not None:
            self.on_spawn_done(done)

    def _spawn(self, user: str) -> float:
        started = time.perf_counter()
        response = self._api("POST", f"/users/{user}/server", data=json.dumps(self.options))
        # 201: ready. A spawn fails within start_timeout + http_timeout, before
        # slow_spawn_timeout, so a 202 (still starting) cannot come.
        if response.status_code != 201:
            raise StormError(f"HTTP {response.status_code}: {_message(response)}")
        return time.perf_counter() - started

    def _stop_one(self, user: str) -> None:
        try:
            response = self._api("DELETE", f"/users/{user}/server")
        except requests.RequestException as e:
            failure = str(e)[:200]
        else:
            # 400: the server is not running (its spawn failed), nothing to stop.
            if response.status_code in (202, 204) or user in self.result.failures:
                return
            failure = f"HTTP {response.status_code}: {_message(response)}"
        with self._lock:
            self.result.stop_failures[user] = failure

    def wait_none_listed(self, timeout: float = 120) -> list[str]:
        """Wait until the hub lists no active server; the users still listed at the end."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._api("GET", "/users", params={"state": "active"}, timeout=30)
            response.raise_for_status()
            active = [u["name"] for u in response.json()]
            if not active or time.monotonic() > deadline:
                return active
            time.sleep(0.5)

    def _probe(self, stop: threading.Event) -> None:
        """GET /hub/api/ every PROBE_INTERVAL_S: how long the hub keeps others waiting."""
        session = requests.Session()
        url = f"{self.hub.url}/hub/api/"
        next_at = time.perf_counter()
        while not stop.is_set():
            started = time.perf_counter()
            try:
                session.get(url, timeout=30).raise_for_status()
            except requests.RequestException:
                self.result.probe_errors += 1
            else:
                self.result.probe_ms.append((time.perf_counter() - started) * 1000)
            next_at = max(next_at + PROBE_INTERVAL_S, time.perf_counter())
            stop.wait(next_at - time.perf_counter())


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message", response.text))[:200]
    except ValueError:
        return response.text[:200]


# -- what the accounting service made of it ---------------------------------------


@dataclass(frozen=True)
class Tally:
    """The accounting database's record of the spawned servers. ``lost_events``: their
    starts and stops it holds no key of; ``duplicated_events``: sessions beyond one each."""

    expected_events: int
    lost_events: int
    duplicated_events: int
    sessions: int
    end_reasons: dict[str, int]
    extra_event_keys: int
    pending_stops: int
    outbox_left: int
    dead_letters: int
    waited_s: float


def outbox_counts(hub: Hub) -> tuple[int, int]:
    """Events the hub's outbox still holds, and its dead letters (read-only)."""
    path = hub.workdir / "eohub-accounting-outbox.sqlite"
    if not path.exists():
        return 0, 0
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        left = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    return int(left), int(dead)


def _read_ledger(engine: Any, users: Sequence[str]) -> tuple[list[Any], list[Any], int]:
    from sqlalchemy import func, select

    from eohub.adapters.accounting_db.models import Event, PendingStop, Session

    # Events first: a stop and its session's close commit together; sessions read later agree.
    with engine.connect() as db:
        events = db.execute(
            select(Session.user, Event.kind)
            .join(Session, Event.session_id == Session.id)
            .where(Session.user.in_(users))
        ).all()
        sessions = db.execute(
            select(Session.id, Session.user, Session.stopped_at, Session.end_reason).where(
                Session.user.in_(users)
            )
        ).all()
        pending = db.execute(
            select(func.count()).select_from(PendingStop).where(PendingStop.user.in_(users))
        ).scalar_one()
    return list(sessions), list(events), int(pending)


def tally_accounting(hub: Hub, db_url: str, spawned: Sequence[str], timeout: float = 120) -> Tally:
    """Wait (at most ``timeout`` s) until the service holds a start and a stop of every
    spawned server and the outbox is empty; count what is lost and what is doubled."""
    from eohub.adapters.accounting_db import create_engine_for

    engine = create_engine_for(db_url)
    started = time.monotonic()
    try:
        while True:
            sessions, events, pending = _read_ledger(engine, spawned)
            left, dead = outbox_counts(hub)
            kinds = {(user, kind) for user, kind in events}
            lost = sum((u, "start") not in kinds for u in spawned)
            lost += sum((u, "stop") not in kinds for u in spawned)
            if (lost == 0 and left == 0) or time.monotonic() - started > timeout:
                break
            time.sleep(1)
    finally:
        engine.dispose()
    per_user = Counter(row.user for row in sessions)
    return Tally(
        expected_events=2 * len(spawned),
        lost_events=lost,
        duplicated_events=sum(max(0, per_user[u] - 1) for u in spawned),
        sessions=len(sessions),
        end_reasons=dict(Counter(str(row.end_reason) for row in sessions)),
        extra_event_keys=max(0, len(events) - 2 * len(spawned)),
        pending_stops=pending,
        outbox_left=left,
        dead_letters=dead,
        waited_s=round(time.monotonic() - started, 1),
    )


QUOTA_METRIC = "eohub_quota_checks_by_policy"


def quota_by_policy(hub: Hub) -> int:
    """Quota checks a failure policy answered (not the service): the hub's
    ``eohub_quota_checks_by_policy_total`` samples. A hub without them fails the storm:
    no count must pass for zero."""
    response = requests.get(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.token}"}, timeout=30
    )
    if not (response.ok and f"# TYPE {QUOTA_METRIC}" in response.text):
        raise StormError(f"the hub's /hub/metrics has no {QUOTA_METRIC}: {response.status_code}")
    total = 0.0
    for line in response.text.splitlines():
        if line.startswith(f"{QUOTA_METRIC}_total"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)
