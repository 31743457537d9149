"""Concurrent LDAP logins: eohub's LDAPAuthenticator against jupyterhub-ldapauthenticator.

What is measured
----------------
One real OpenLDAP ``slapd`` is started from ``tests/data/*.ldif`` and put behind a
:class:`tests.support.faultproxy.FaultProxy` on its plain ``ldap://`` port. The proxy adds
half of ``--op-latency-ms`` to every chunk it forwards in each direction, so one LDAP
request and its response cost ``--op-latency-ms`` (50 ms by default), like a directory in
another data centre.

For each authenticator, ``--logins`` logins (200 by default; alice, bob and carol in
turn, all allowed by their groups) are started at once with ``asyncio.gather`` of
``authenticator.get_authenticated_user(None, {"username": ..., "password": ...})`` on one
asyncio event loop, the hub's. Every result must be a successful login of the right user,
or the benchmark fails: broken runs are never compared. For each run it reports

- ``total_s``: wall time from the first login started to the last one finished;
- ``p99_stall_ms`` and ``max_stall_ms``: how late a ticker coroutine that sleeps 5 ms in
  a loop wakes up during the run (actual minus expected wake-up time). This is how long
  the hub could not answer any other request, such as a page load or a spawn's progress.

Both authenticators search with the service account ``cn=hub-reader``, bind as the user
over plain ``ldap://`` (eohub: ``allow_plaintext=True, start_tls=False``; the peer:
``tls_strategy="insecure"``), check groups (``researchers`` or ``climate``) and read the
user's profile attributes. eohub runs with ``max_concurrency`` worker threads
(``--max-concurrency``; 32 by default, the authenticator's own default). A fresh
authenticator, with fresh connections, is built for every run; eohub runs first and the
peer second in each repetition, and ``--repeat`` repetitions report medians.

By default the proxy runs in a child process, as network latency would: in the hub's
own process its forwarding thread would compete for the GIL with the hub's event loop
and charge eohub's stall figures with the proxy's work. ``--proxy-in-process`` runs it
as a thread of this process instead, for comparison.

Output
------
Progress goes to stderr. The last line on stdout is one JSON object::

    {"eohub": {"total_s": .., "p99_stall_ms": .., "max_stall_ms": ..},
     "ldapauthenticator": {...}, "config": {...}}

eohub's targets are ``max_stall_ms <= 50``, ``p99_stall_ms <= 20`` and ``total_s <= 2``;
they are reported, not asserted.

How to run
----------
From the repository root::

    .venv-tox/bin/tox -e bench                       # 200 logins, one repetition
    .venv-tox/bin/tox -e bench -- --repeat 3         # medians of three
    .tox/bench/bin/python benchmarks/ldap_logins.py --quick   # 40 logins, a fast check

The ``bench`` tox env pins the peer (jupyterhub-ldapauthenticator 2.0.2). slapd and the
ldap-utils must be installed (``scripts/bootstrap.sh``), as for the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `tests.support` is not an installed package

from traitlets.config import Config  # noqa: E402

from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.slapd import Directory, start_slapd  # noqa: E402
from tests.support.tools import DATA_DIR  # noqa: E402

# Users whose logins succeed under both configurations, with their passwords from
# tests/data/10-directory.ldif. alice: researchers; bob: researchers and climate
# (groupOfUniqueNames); carol: climate.
USERS: tuple[tuple[str, str], ...] = (
    ("alice", "alice-pw"),
    ("bob", "bob-pw"),
    ("carol", "carol-pw"),
)
ALLOWED_GROUPS = ("researchers", "climate")
# What eohub reads for a profile; the peer is asked for the same via auth_state_attributes.
PROFILE_ATTRIBUTES = ["displayName", "cn", "mail", "uidNumber", "gidNumber", "homeDirectory"]
TICK_S = 0.005
QUICK_LOGINS = 40
TARGETS = {"total_s": 2.0, "p99_stall_ms": 20.0, "max_stall_ms": 50.0}


class Authenticator(Protocol):
    """The part of JupyterHub's Authenticator API the benchmark drives."""

    async def get_authenticated_user(
        self, handler: Any, data: dict[str, str]
    ) -> dict[str, Any] | None: ...


class LoginFailed(RuntimeError):
    """At least one login of a run did not succeed: the figures would be meaningless."""


@dataclass(frozen=True)
class RunResult:
    """One run of ``logins`` concurrent logins for one authenticator."""

    total_s: float
    p99_stall_ms: float
    max_stall_ms: float
    ticks: int


@dataclass(frozen=True)
class Target:
    """Where the authenticators connect: the proxy in front of slapd's ldap:// port."""

    host: str
    port: int
    directory: Directory

    @property
    def people_base(self) -> str:
        return f"ou=people,{self.directory.base_dn}"

    @property
    def groups_base(self) -> str:
        return f"ou=groups,{self.directory.base_dn}"


# The two authenticators, configured alike


def make_eohub(target: Target, *, max_concurrency: int) -> Any:
    """eohub's authenticator: service-account search, plain ldap://, group check."""
    from eohub.auth.ldap import LDAPAuthenticator

    config = Config(
        {
            "LDAPAuthenticator": {
                "server_urls": [f"ldap://{target.host}:{target.port}"],
                "start_tls": False,
                "allow_plaintext": True,
                "service_dn": target.directory.service_dn,
                "service_password": target.directory.service_password,
                "user_search_base": target.people_base,
                "group_search_base": target.groups_base,
                "allowed_groups": set(ALLOWED_GROUPS),
                "max_concurrency": max_concurrency,
                "connect_timeout": 5.0,
                "receive_timeout": 10,
            }
        }
    )
    authenticator = LDAPAuthenticator(config=config)
    authenticator.check_allow_config()
    return authenticator


def close_eohub(authenticator: Any) -> None:
    """Unbind the kept service connections and stop the worker threads."""
    authenticator.directory.close()
    authenticator.close()


def make_peer(target: Target) -> Any:
    """jupyterhub-ldapauthenticator with the same search account, groups and attributes."""
    try:
        from ldapauthenticator import LDAPAuthenticator as PeerAuthenticator
    except ImportError as e:
        raise SystemExit(
            "jupyterhub-ldapauthenticator is not installed: run this benchmark in the "
            "`bench` tox env (`.venv-tox/bin/tox -e bench`)"
        ) from e

    config = Config(
        {
            "LDAPAuthenticator": {
                "server_address": target.host,
                "server_port": target.port,
                "tls_strategy": "insecure",
                "lookup_dn": True,
                "lookup_dn_search_user": target.directory.service_dn,
                "lookup_dn_search_password": target.directory.service_password,
                "lookup_dn_search_filter": "({login_attr}={login})",
                "lookup_dn_user_dn_attribute": "uid",
                "user_search_base": target.people_base,
                "user_attribute": "uid",
                # The peer's group check takes DNs and tests each with a base search
                # using its default filter (member, uniqueMember or memberUid).
                "allowed_groups": [target.directory.group_dn(g) for g in ALLOWED_GROUPS],
                "auth_state_attributes": PROFILE_ATTRIBUTES,
            }
        }
    )
    return PeerAuthenticator(config=config)


# Measuring


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


async def _ticker(lateness: list[float], stop: asyncio.Event) -> None:
    """Sleep TICK_S in a loop and record how late each wake-up is, in seconds."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + TICK_S
        await asyncio.sleep(TICK_S)
        lateness.append(max(0.0, loop.time() - expected))


def credentials(count: int) -> list[tuple[str, str]]:
    return [USERS[i % len(USERS)] for i in range(count)]


async def _run_logins(authenticator: Authenticator, logins: int) -> tuple[RunResult, list[str]]:
    lateness: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(lateness, stop))
    await asyncio.sleep(TICK_S * 4)  # the ticker is running before the first login
    lateness.clear()
    wanted = credentials(logins)
    start = time.perf_counter()
    results = await asyncio.gather(
        *(
            authenticator.get_authenticated_user(None, {"username": u, "password": p})
            for u, p in wanted
        ),
        return_exceptions=True,
    )
    total = time.perf_counter() - start
    stop.set()
    await ticker  # its last wake-up, possibly late, is recorded too
    failures = [
        f"login {i} ({user}): {_describe(result)}"
        for i, ((user, _), result) in enumerate(zip(wanted, results, strict=True))
        if not (isinstance(result, dict) and result.get("name") == user)
    ]
    return (
        RunResult(
            total_s=total,
            p99_stall_ms=percentile(lateness, 0.99) * 1000,
            max_stall_ms=max(lateness, default=0.0) * 1000,
            ticks=len(lateness),
        ),
        failures,
    )


def _describe(result: object) -> str:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    if result is None:
        return "refused (None)"
    return f"unexpected result {result!r}"


def measure(name: str, authenticator: Authenticator, logins: int) -> RunResult:
    """Run ``logins`` concurrent logins on a fresh event loop; fail if any login failed."""
    gc.collect()
    result, failures = asyncio.run(_run_logins(authenticator, logins))
    if failures:
        shown = "\n  ".join(failures[:10])
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        raise LoginFailed(f"{name}: {len(failures)} of {logins} logins failed:\n  {shown}{more}")
    return result


# The proxy, in a child process or a thread of this one


def _serve_proxy(
    upstream_host: str,
    upstream_port: int,
    latency: float,
    conn: multiprocessing.connection.Connection,
) -> None:
    """Child process: run a FaultProxy until the parent says stop (or goes away)."""
    proxy = FaultProxy(upstream_host, upstream_port, latency=latency).start()
    try:
        conn.send(proxy.port)
        with contextlib.suppress(EOFError):
            conn.recv()
    finally:
        _stop_quietly(proxy)


def _stop_quietly(proxy: FaultProxy) -> None:
    # Stopping cancels the connections still open (the peer never unbinds), and asyncio
    # logs each cancellation as an error: noise, not a benchmark problem.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    proxy.stop()


@contextlib.contextmanager
def running_proxy(
    upstream_host: str, upstream_port: int, latency: float, *, in_process: bool
) -> Iterator[int]:
    """A FaultProxy in front of (upstream_host, upstream_port); yields its port."""
    if in_process:
        proxy = FaultProxy(upstream_host, upstream_port, latency=latency).start()
        try:
            yield proxy.port
        finally:
            _stop_quietly(proxy)
        return
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_serve_proxy,
        args=(upstream_host, upstream_port, latency, child),
        name="fault-proxy",
        daemon=True,
    )
    process.start()
    try:
        deadline = time.monotonic() + 30
        while not parent.poll(0.1):
            if not process.is_alive():
                raise RuntimeError(f"the fault proxy exited with code {process.exitcode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the fault proxy did not start within 30 s")
        port = int(parent.recv())
        yield port
    finally:
        with contextlib.suppress(OSError, BrokenPipeError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)


# Reporting


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("eohub", "jupyterhub-ldapauthenticator", "ldap3", "jupyterhub"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def median_result(runs: Sequence[RunResult]) -> dict[str, float]:
    return {
        key: round(statistics.median(getattr(r, key) for r in runs), 3)
        for key in ("total_s", "p99_stall_ms", "max_stall_ms")
    }


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _raise_fd_limit() -> None:
    # The peer never unbinds: its sockets live until garbage collection. slapd
    # inherits the limit, so raise it before slapd starts.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Concurrent LDAP logins: eohub vs jupyterhub-ldapauthenticator.",
    )
    parser.add_argument("--logins", type=int, default=200, help="concurrent logins (200)")
    parser.add_argument(
        "--quick", action="store_true", help=f"a fast check: {QUICK_LOGINS} logins"
    )
    parser.add_argument(
        "--op-latency-ms",
        type=float,
        default=50.0,
        help="added cost of one LDAP request and its response, in ms (50)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=32,
        help="eohub's LDAPAuthenticator.max_concurrency, its worker threads (32, its default)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; medians (1)")
    parser.add_argument(
        "--only",
        choices=("eohub", "ldapauthenticator"),
        help="run one authenticator only (the JSON has only its figures)",
    )
    parser.add_argument(
        "--proxy-in-process",
        action="store_true",
        help="run the latency proxy as a thread of this process, not a child process",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.logins = QUICK_LOGINS
    if args.logins < 1 or args.repeat < 1 or args.max_concurrency < 1:
        parser.error("--logins, --repeat and --max-concurrency must be at least 1")
    if args.op_latency_ms < 0:
        parser.error("--op-latency-ms must not be negative")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start slapd and the proxy, run every repetition, and stop both whatever happens."""
    _raise_fd_limit()
    latency = args.op_latency_ms / 2 / 1000  # per direction: a round trip costs two
    workdir = Path(tempfile.mkdtemp(prefix="eohub-bench-ldap-"))
    runs: dict[str, list[RunResult]] = {"eohub": [], "ldapauthenticator": []}
    selected = [args.only] if args.only else list(runs)
    slapd = None
    try:
        _say(f"starting slapd in {workdir}")
        slapd, directory = start_slapd(workdir / "slapd", sorted(DATA_DIR.glob("*.ldif")))
        with running_proxy(
            directory.host, directory.port, latency, in_process=args.proxy_in_process
        ) as port:
            target = Target(host="127.0.0.1", port=port, directory=directory)
            where = "in this process" if args.proxy_in_process else "in a child process"
            _say(
                f"proxy 127.0.0.1:{port} -> {directory.url} ({where}), "
                f"{args.op_latency_ms:g} ms per LDAP operation ({latency * 1000:g} ms each way)"
            )
            for name in selected:
                warm_up(name, target, args)
            for repetition in range(1, args.repeat + 1):
                for name in selected:
                    result = _one_run(name, target, args)
                    runs[name].append(result)
                    _say(
                        f"[{repetition}/{args.repeat}] {name:<17} {args.logins} logins: "
                        f"total {result.total_s:.3f} s, stall p99 {result.p99_stall_ms:.1f} ms, "
                        f"max {result.max_stall_ms:.1f} ms ({result.ticks} ticks)"
                    )
    finally:
        if slapd is not None:
            slapd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report: dict[str, Any] = {name: median_result(runs[name]) for name in selected}
    report["config"] = {
        "logins": args.logins,
        "op_latency_ms": args.op_latency_ms,
        "proxy_latency_ms_each_way": args.op_latency_ms / 2,
        "proxy": "in-process thread" if args.proxy_in_process else "child process",
        "eohub_max_concurrency": args.max_concurrency,
        "repeats": args.repeat,
        "statistic": "median of repeats" if args.repeat > 1 else "single run",
        "users": [u for u, _ in USERS],
        "tick_ms": TICK_S * 1000,
        "cpus": os.cpu_count(),
        "versions": versions(),
    }
    return report


def _one_run(name: str, target: Target, args: argparse.Namespace) -> RunResult:
    """A fresh authenticator (so fresh connections) for every run."""
    if name == "eohub":
        authenticator = make_eohub(target, max_concurrency=args.max_concurrency)
        try:
            return measure(name, authenticator, args.logins)
        finally:
            close_eohub(authenticator)
    return measure(name, make_peer(target), args.logins)


def warm_up(name: str, target: Target, args: argparse.Namespace) -> None:
    """Log each user in once, untimed: checks the setup and loads lazy imports."""
    if name == "eohub":
        authenticator = make_eohub(target, max_concurrency=args.max_concurrency)
        try:
            measure(f"{name} warm-up", authenticator, len(USERS))
        finally:
            close_eohub(authenticator)
    else:
        measure(f"{name} warm-up", make_peer(target), len(USERS))
    _say(f"{name}: warm-up logins of {', '.join(u for u, _ in USERS)} succeeded")


def _report_targets(report: dict[str, Any]) -> None:
    figures = report.get("eohub")
    if not figures:
        return
    for key, limit in TARGETS.items():
        verdict = "met" if figures[key] <= limit else "MISSED"
        _say(f"eohub target {key} <= {limit:g}: {figures[key]:g} ({verdict})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    _say(
        f"{args.logins} concurrent logins, {args.repeat} repetition(s), "
        f"eohub max_concurrency={args.max_concurrency}"
    )
    try:
        report = run(args)
    except LoginFailed as e:
        _say(f"FAILED: {e}")
        return 1
    _report_targets(report)
    print(json.dumps(report, sort_keys=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
