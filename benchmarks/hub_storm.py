"""Spawn storms: a plain JupyterHub against the same hub with eohub, back to back.

What is measured
----------------
Each repetition starts two real hubs with configurable-http-proxy, one after the other,
each fresh (a first storm after start), and runs the same storm on each
(:mod:`tests.support.storm`):

- **baseline**: no drop-ins, JupyterHub's ``SimpleLocalProcessSpawner``;
- **eohub**: the ``jupyterhub_config.d/`` drop-ins, ``QuotaLocalSpawner`` (one
  environment, one size, every user charged to the group ``class``, which has a group
  budget and a per-member server limit, so every spawn gets a real quota check), and the
  managed ``eohub-accounting`` service on a fresh PostgreSQL database (``--db sqlite``:
  a SQLite file).

Both run the same stand-in single-user server (standard library only, any GET gets 200),
the same timeouts and JupyterHub's default ``concurrent_spawn_limit``. The storm:
``--users`` users (200; ``--quick``: 50) in one hub group, each spawned through
``POST /hub/api/users/<name>/server`` with ``--in-flight`` (50) at a time. The hubs'
``slow_spawn_timeout`` is long, so the POST answers once the server is ready: a spawn's
time is from the POST to its answer, and the driver never polls. A probe thread GETs
``/hub/api/`` every 100 ms during the spawns (``probe_p99_ms``: how long any other request
waits). Then every server is stopped (50 at a time) and the driver waits until the hub
lists none.

For eohub the benchmark then waits (at most 120 s) until the accounting database holds a
start and a stop event of every spawned server and the hub's outbox is empty, and counts:
``lost_events`` (of the 2 events per spawned server, those with no key in the database),
``duplicated_events`` (sessions beyond one per spawned server) and ``quota_by_policy``
(quota checks answered by the hub's failure policy instead of the service: the samples of
``eohub_quota_checks_by_policy_total`` at ``/hub/metrics``; a hub without it fails the run).
``spawn_steps_mean_ms`` splits eohub's part of a spawn by step (``policy``, ``quota``,
``record``, from ``eohub_spawn_step_seconds``), and ``service_quota_check_ms`` is the
accounting service's own time per check (from its access log), the rest of a check's
time being the wire and the hub's event loop.

``--fault``: a third of the way into the eohub storm, every connection to the
accounting database is terminated (``pg_terminate_backend``), and two thirds of the way,
the accounting service's process is killed (SIGKILL); JupyterHub restarts it (it polls
managed services every 30 s). "Of the way" is whichever comes first: that fraction of
the spawns ended, or that fraction of the baseline's storm time in the same repetition
(with all spawns in flight at once they end together, and a count alone would come too
late). ``faults`` in each run says what was done, when, and which trigger fired. Quota
checks answered by the failure policy meanwhile are expected; the events must still
arrive, once.

Timing figures are medians over ``--repeat`` (3) repetitions; ``ratio_p50`` and
``ratio_p99`` are eohub's median over the baseline's. Counts (``failed``,
``lost_events``, ``duplicated_events``, ``quota_by_policy``) are the worst repetition's,
since a median would hide one bad run. ``runs`` holds every repetition's figures.

Output
------
Progress goes to stderr. The last line on stdout is one JSON object::

    {"users": N, "baseline": {"spawn_p50_s", "spawn_p99_s", "probe_p99_ms", "failed"},
     "eohub": {..., "quota_by_policy": k},
     "ratio_p50", "ratio_p99", "lost_events", "duplicated_events",
     "targets": {..}, "met": bool, "runs": [..], "config": {..}}

Targets (reported, never asserted): ``ratio_p50 <= 1.10``, ``ratio_p99 <= 1.10``,
``quota_by_policy == 0`` (without ``--fault``), 0 lost and 0 duplicated events, and with
``--fault`` 0 failed spawns.

How to run
----------
From the repository root::

    .tox/bench/bin/python benchmarks/hub_storm.py                    # 200 users, 3 runs
    .tox/bench/bin/python benchmarks/hub_storm.py --quick --repeat 1 # 50 users, one run
    .tox/bench/bin/python benchmarks/hub_storm.py --fault            # with faults

PostgreSQL must be running on 127.0.0.1:5432 (services.md), and configurable-http-proxy
installed (``scripts/bootstrap.sh``; ``EOHUB_NODE_TOOLS`` points at its node_modules),
as for the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `tests.support` is not an installed package

from tests.support.databases import POSTGRES_ADMIN_URL, postgres_database  # noqa: E402
from tests.support.hub import Hub  # noqa: E402
from tests.support.storm import (  # noqa: E402
    Storm,
    percentile,
    quota_by_policy,
    start_eohub_hub,
    start_plain_hub,
    stop_hub,
    tally_accounting,
    user_names,
)

TARGET_RATIO = 1.10
TIMINGS = ("spawn_p50_s", "spawn_p99_s", "probe_p50_ms", "probe_p99_ms", "storm_s")
COUNTS = ("failed", "quota_by_policy", "lost_events", "duplicated_events")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def accounting_database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty accounting database: its SQLAlchemy URL."""
    if kind == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{workdir / 'accounting.sqlite'}"
        return
    with postgres_database() as url:
        yield url


# (fraction of the storm, fault): the database first, then the service.
FAULT_PLAN = ((1 / 3, "cut_database"), (2 / 3, "kill_service"))


class Faults:
    """Cut the accounting database's connections a third of the way into the storm, and
    kill the accounting service two thirds of the way.

    "Of the way" is whichever comes first: that fraction of the spawns ended, or that
    fraction of ``expected_s`` (the baseline's storm in the same repetition) elapsed.
    With all spawns in flight at once (``--quick``: 50 users, 50 in flight) they all end
    together, and a count alone would fire after the storm. Each fault runs on a thread
    of its own, so no spawn worker waits for it.
    """

    def __init__(self, hub: Hub, db_url: str, users: int, expected_s: float) -> None:
        self.hub = hub
        self.db_url = db_url
        self.counts = {name: max(1, round(users * f)) for f, name in FAULT_PLAN}
        self.delays = {name: expected_s * f for f, name in FAULT_PLAN}
        self.pending = {name for _, name in FAULT_PLAN}
        self.done: list[dict[str, Any]] = []
        self.spawns_done = 0
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def arm(self) -> None:
        """The spawns begin: start the clock."""
        self.started = time.perf_counter()
        self._thread(self._clock)

    def _thread(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _clock(self) -> None:
        for name, delay in sorted(self.delays.items(), key=lambda item: item[1]):
            if self._stop.wait(max(0.0, self.started + delay - time.perf_counter())):
                return
            self._fire(name, "time")

    def on_spawn_done(self, count: int) -> None:
        self.spawns_done = count
        for name, threshold in self.counts.items():
            if count >= threshold:
                self._fire(name, "spawns")

    def _fire(self, name: str, trigger: str) -> None:
        with self._lock:
            if name not in self.pending:
                return
            self.pending.discard(name)
        self._thread(self._run, name, trigger)

    def _run(self, name: str, trigger: str) -> None:
        at, done = time.perf_counter() - self.started, self.spawns_done
        try:
            detail = getattr(self, name)()
        except Exception as e:  # reported in the JSON; the storm goes on
            detail = f"failed: {e!r}"
        fault = {"fault": name, "trigger": trigger, "at_s": round(at, 2)}
        self.done.append({**fault, "spawns_done": done, "detail": detail})

    def join(self) -> list[dict[str, Any]]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return sorted(self.done, key=lambda f: f["at_s"])

    def cut_database(self) -> str:
        if not self.db_url.startswith("postgresql"):
            return "skipped: SQLite has no server connections to cut"
        import psycopg

        name = urlsplit(self.db_url).path.lstrip("/")
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            row = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).fetchone()
        return f"terminated {row[0] if row else 0} connections to {name}"

    def kill_service(self) -> str:
        pid = accounting_service_pid(self.hub.process.pid)
        if pid is None:
            return "skipped: no accounting service process found"
        os.kill(pid, signal.SIGKILL)
        return f"SIGKILL to the accounting service, pid {pid}"


def accounting_service_pid(hub_pid: int) -> int | None:
    """The hub's child running ``python -m eohub.accounting`` (a managed service)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == hub_pid and b"eohub.accounting" in cmdline:
            return int(entry.name)
    return None


STEP_METRIC = "eohub_spawn_step_seconds"


def plain_run(workdir: Path, users: list[str], in_flight: int) -> dict[str, Any]:
    hub = start_plain_hub(workdir, users)
    try:
        result = Storm(hub, users, in_flight=in_flight).run()
    finally:
        stop_hub(hub)
    return result.summary()


def eohub_run(
    workdir: Path, users: list[str], args: argparse.Namespace, baseline_s: float
) -> dict[str, Any]:
    with accounting_database(args.db, workdir) as db_url:
        hub = start_eohub_hub(workdir, users, db_url)
        try:
            faults = Faults(hub, db_url, len(users), baseline_s) if args.fault else None
            storm = Storm(
                hub,
                users,
                in_flight=args.in_flight,
                on_start=faults.arm if faults else None,
                on_spawn_done=faults.on_spawn_done if faults else None,
            )
            result = storm.run()
            injected = faults.join() if faults else []
            tally = tally_accounting(hub, db_url, result.spawned)
            by_policy = quota_by_policy(hub)
            steps = spawn_steps_ms(hub)
            service_ms = service_quota_ms(hub)
        finally:
            stop_hub(hub)
    return {
        **result.summary(),
        "quota_by_policy": by_policy,
        "spawn_steps_mean_ms": steps,
        "service_quota_check_ms": service_ms,
        "lost_events": tally.lost_events,
        "duplicated_events": tally.duplicated_events,
        "accounting": dataclasses.asdict(tally),
        "faults": injected,
    }


def spawn_steps_ms(hub: Hub) -> dict[str, dict[str, float]]:
    """Each of eohub's spawn steps, from ``eohub_spawn_step_seconds`` in the hub's metrics:
    the mean, and the bucket bound that 99 % of the steps took at most (ms)."""
    response = requests.get(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.token}"}, timeout=30
    )
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    for line in response.text.splitlines() if response.ok else []:
        if not line.startswith(STEP_METRIC):
            continue
        step = line.split('step="', 1)[1].split('"', 1)[0]
        value = float(line.rsplit(" ", 1)[1])
        if line.startswith(STEP_METRIC + "_sum{"):
            sums[step] = value
        elif line.startswith(STEP_METRIC + "_count{"):
            counts[step] = value
        elif line.startswith(STEP_METRIC + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.setdefault(step, []).append((float(bound), value))
    found = {}
    for step, n in counts.items():
        if n:
            p99 = next(b for b, c in sorted(buckets.get(step, [])) if c >= 0.99 * n)
            found[step] = {"mean": round(1000 * sums[step] / n, 2), "p99_at_most": 1000 * p99}
    return found


def service_quota_ms(hub: Hub) -> dict[str, float]:
    """The accounting service's own time per quota check (p50, p99), from its access log
    lines in the hub's log: the rest of a check's time is the wire and the hub's loop."""
    times = []
    for line in (hub.workdir / "jupyterhub.log").read_text(errors="replace").splitlines():
        if "POST /services/eohub-accounting/api/quota/check" in line and line.endswith("ms"):
            times.append(float(line.rsplit(" ", 1)[1].removesuffix("ms")))
    return {"p50": percentile(times, 0.5), "p99": percentile(times, 0.99), "checks": len(times)}


def one_repetition(root: Path, index: int, args: argparse.Namespace) -> dict[str, Any]:
    users = user_names(args.users)
    _say(f"run {index + 1}/{args.repeat}: plain hub, {args.users} users")
    baseline = plain_run(root / f"run{index}-plain", users, args.in_flight)
    _say(f"  baseline: {json.dumps({k: baseline[k] for k in (*TIMINGS, 'failed')})}")
    _say(f"run {index + 1}/{args.repeat}: eohub hub ({args.db}{', faults' if args.fault else ''})")
    eohub = eohub_run(root / f"run{index}-eohub", users, args, baseline["storm_s"])
    _say(f"  eohub: {json.dumps({k: eohub[k] for k in (*TIMINGS, *COUNTS)})}")
    for fault in eohub["faults"]:
        _say(f"  fault: {json.dumps(fault)}")
    return {
        "baseline": baseline,
        "eohub": eohub,
        "ratio_p50": _ratio(eohub["spawn_p50_s"], baseline["spawn_p50_s"]),
        "ratio_p99": _ratio(eohub["spawn_p99_s"], baseline["spawn_p99_s"]),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _median(runs: list[dict[str, Any]], side: str, key: str) -> float:
    return round(float(statistics.median(r[side][key] for r in runs)), 3)


def summarise(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    baseline = {k: _median(runs, "baseline", k) for k in TIMINGS}
    baseline["failed"] = max(r["baseline"]["failed"] for r in runs)
    eohub: dict[str, Any] = {k: _median(runs, "eohub", k) for k in TIMINGS}
    for key in COUNTS:
        eohub[key] = max(r["eohub"][key] for r in runs)
    ratio_p50 = _ratio(eohub["spawn_p50_s"], baseline["spawn_p50_s"])
    ratio_p99 = _ratio(eohub["spawn_p99_s"], baseline["spawn_p99_s"])
    checks = {
        "ratio_p50 <= 1.10": ratio_p50 is not None and ratio_p50 <= TARGET_RATIO,
        "ratio_p99 <= 1.10": ratio_p99 is not None and ratio_p99 <= TARGET_RATIO,
        "lost_events == 0": eohub["lost_events"] == 0,
        "duplicated_events == 0": eohub["duplicated_events"] == 0,
        "failed == 0": eohub["failed"] == 0 and baseline["failed"] == 0,
    }
    if not args.fault:
        checks["quota_by_policy == 0"] = eohub["quota_by_policy"] == 0
    return {
        "users": args.users,
        "baseline": baseline,
        "eohub": eohub,
        "ratio_p50": ratio_p50,
        "ratio_p99": ratio_p99,
        "lost_events": eohub["lost_events"],
        "duplicated_events": eohub["duplicated_events"],
        "targets": checks,
        "met": all(checks.values()),
        "runs": runs,
        "config": _config(args),
    }


def _config(args: argparse.Namespace) -> dict[str, Any]:
    import jupyterhub

    return {
        "users": args.users,
        "in_flight": args.in_flight,
        "repeat": args.repeat,
        "db": args.db,
        "fault": args.fault,
        "quick": args.quick,
        "jupyterhub": jupyterhub.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=200, help="users in the storm (200)")
    parser.add_argument("--quick", action="store_true", help="50 users")
    parser.add_argument("--in-flight", type=int, default=50, help="spawns at a time (50)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions; medians (3)")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--fault",
        action="store_true",
        help="cut the accounting database's connections and kill the service mid-storm",
    )
    parser.add_argument("--keep", action="store_true", help="keep the hubs' folders and logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.users = 50
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="eohub-hub-storm-"))
    started = time.perf_counter()
    try:
        runs = [one_repetition(root, i, args) for i in range(args.repeat)]
    finally:
        if args.keep:
            _say(f"hub folders and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    summary = summarise(runs, args)
    summary["config"]["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
