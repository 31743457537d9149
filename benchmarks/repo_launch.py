"""The time a repository launch adds on a cache hit: policy, resolve and registry check.

A launch from a git repository does three things a plain environment's launch does
not, before the pod is made: the launch policy checks the repository
(``authorize`` with the admin's :class:`~eohub.domain.launch.repository.RepoRules`),
:meth:`RepoLaunches.resolve` resolves the ref to a commit with ``git ls-remote``, and
:meth:`RepoLaunches.find_or_build` asks the registry for the commit's image
(``RegistryClient.image_exists``: one ``HEAD`` of the manifest). On a cache hit the
image is there and the launch goes on at once; this benchmark measures that case, with
the real pieces, against services on loopback:

- git's own ``http-backend`` serving a bare repository
  (``tests.support.git_server``);
- Debian's ``docker-registry`` (distribution 2.8) with ``auth: token``, so the bearer
  token path is included, and a second one without auth
  (``tests.support.registry``). The commit's image is pushed to both first.

Each launch runs the steps as ``QuotaKubeSpawner`` runs them (``authorize_launch`` then
``prepare_repository``), less the accounting quota call and the pod manifest, which
every launch has (``benchmarks/accounting.py``, ``benchmarks/spawn_overhead.py``):
the admin's rules, ``split_charged`` and ``parse_options``, ``authorize`` twice (before
and after the quota answer) with ``check_charged``, then for a repository ``resolve``
and ``find_or_build``. "Added" time is a repository launch's time minus a plain
environment's launch (the same steps, which stop after ``authorize``) measured next to
it, launch by launch.

Paths, interleaved in one process, their order rotating from one launch to the next:

- ``eohub_cold``: ``resolve_cache_seconds=0``, so every launch runs ``git ls-remote``:
  the honest worst case, and the headline (token-auth registry);
- ``eohub_warm``: the ref answer is cached (as for a burst of launches of one link);
- ``naive_clone``: the same policy and registry check, but the commit is learnt as a
  simple spawner hook would: ``git clone --depth 1 --branch <ref>`` and ``git rev-parse
  HEAD`` in a temporary folder (removed outside the timing);
- both eohub paths again against the registry without auth (``*_noauth``).

BinderHub's build endpoint, which 2i2c's jupyterhub-fancy-profiles and BinderHub's own
launch ask on a cache hit, needs Docker and Kubernetes, which this machine lacks; see
``benchmarks/README.md``.

Usage, from the repository root::

    .tox/bench/bin/python benchmarks/repo_launch.py            # 300 launches per path
    .tox/bench/bin/python benchmarks/repo_launch.py --quick    # 30

The last line of output is JSON with ``cache_hit_added_ms_p50`` and
``cache_hit_added_ms_p99`` (the cold path, token registry), the details, and the
target, p99 <= 500 ms on loopback, which is reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `tests.support` is not an installed package

from traitlets.config import Config  # noqa: E402

from eohub.adapters.git.process import git_env  # noqa: E402
from eohub.adapters.registry import split_image  # noqa: E402
from eohub.domain.launch.config import LaunchConfig, parse_launch_config  # noqa: E402
from eohub.domain.launch.options import parse_options  # noqa: E402
from eohub.domain.launch.policy import (  # noqa: E402
    Launch,
    Member,
    authorize,
    check_charged,
    split_charged,
)
from eohub.domain.launch.repository import RepoLaunch, RepoRules  # noqa: E402
from eohub.spawner.repo_launches import RepoLaunches  # noqa: E402
from tests.support.git_server import Repo, git_http_server, make_repo  # noqa: E402
from tests.support.registry import Registry, start_registry  # noqa: E402

TARGET_P99_MS = 500.0
QUICK_LAUNCHES = 30
WARMUP = 5
HEADLINE = "eohub_cold"
SIZES = {"small": {"display_name": "Small", "cpu": 1, "memory": "2G"}}
ENVIRONMENTS = {
    "lab": {
        "display_name": "JupyterLab",
        "image": "quay.io/eohub/notebook:2026.11",
        "default": True,
    },
    "from-repo": {
        "display_name": "Build from a repository",
        "repository": True,
        "allowed_groups": ["climate"],
    },
}
MEMBER = Member("alice", frozenset({"climate"}))
PLAIN = {"environment": "lab", "size": "small", "group": "climate"}
REF = "main"


class LaunchFailed(RuntimeError):
    """A launch did not end on a cache hit of the right commit: figures would be meaningless."""


@dataclass(frozen=True)
class Timing:
    """One launch: its steps in milliseconds (resolve and registry are 0 for a plain one)."""

    policy: float
    resolve: float = 0.0
    registry: float = 0.0

    @property
    def total(self) -> float:
        return self.policy + self.resolve + self.registry


@dataclass
class Bench:
    """The services and settings one run launches against."""

    config: LaunchConfig
    repo: Repo
    repo_options: dict[str, object]
    expected: dict[str, str]  # path -> the image it must find
    launches: dict[str, RepoLaunches]  # path -> its hub-wide RepoLaunches
    scratch: Path


def repo_launches(registry: Registry, *, cache_seconds: float) -> RepoLaunches:
    """A hub's RepoLaunches, configured as ``c.RepoLaunches`` would be."""
    config = Config()
    settings = config.RepoLaunches
    settings.allow_http = True  # loopback test services
    settings.allow_private_hosts = True
    settings.image_prefix = f"{registry.host}/binder/eohub-"
    settings.registry_url = registry.url
    if registry.auth == "token":
        settings.registry_username = "reader"
        settings.registry_password = "reader-pw"  # noqa: S105 - tests.support.registry.USERS
    settings.resolve_cache_seconds = cache_seconds
    return RepoLaunches(config=config)


def policy(config: LaunchConfig, options: Mapping[str, object], rules: RepoRules) -> Launch:
    """``authorize_launch``'s policy part: parse, authorize, (quota), authorize again."""
    raw, charged = split_charged(options)
    request = parse_options(raw)  # type: ignore[arg-type]  # it refuses non-mappings
    first = authorize(config, MEMBER, request, None, rules)
    check_charged(charged, first)
    launch = authorize(config, MEMBER, request, {}, rules)  # no budget figures: all fit
    check_charged(charged, launch)
    return launch


def ignore(message: str) -> None:
    """The spawn progress the spawner would show; not needed here."""


async def eohub_launch(bench: Bench, path: str, options: Mapping[str, object]) -> Timing:
    launches = bench.launches[path]
    t0 = time.perf_counter()
    launch = policy(bench.config, options, launches.rules())
    t1 = time.perf_counter()
    if launch.repo is None:
        return Timing((t1 - t0) * 1000)
    repo = await launches.resolve(launch.repo, launches.rules())
    t2 = time.perf_counter()
    image = await launches.find_or_build(repo, launches.rules(), ignore)
    t3 = time.perf_counter()
    if repo.commit != bench.repo.main or image != bench.expected[path]:
        raise LaunchFailed(f"{path}: got {image} at {repo.commit}")
    return Timing((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)


async def naive_commit(url: str, ref: str, scratch: Path) -> str:
    """Learn the commit as a simple hook would: a shallow clone and ``rev-parse``."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    env = git_env()
    clone = await asyncio.create_subprocess_exec(
        *("git", "clone", "-q", "--depth", "1", "--branch", ref, "--", url, str(folder)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    _, err = await clone.communicate()
    if clone.returncode != 0:
        raise LaunchFailed(f"naive clone failed: {err.decode(errors='replace')}")
    parse = await asyncio.create_subprocess_exec(
        *("git", "-C", str(folder), "rev-parse", "HEAD"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    out, _ = await parse.communicate()
    return out.decode().strip()


async def naive_launch(bench: Bench, path: str, options: Mapping[str, object]) -> Timing:
    """The same policy and registry check; the commit comes from a clone."""
    launches = bench.launches[path]
    t0 = time.perf_counter()
    launch = policy(bench.config, options, launches.rules())
    t1 = time.perf_counter()
    assert launch.repo is not None
    rules = launches.rules()
    commit = await naive_commit(launch.repo.spec.url, launch.repo.spec.ref, bench.scratch)
    repo: RepoLaunch = launch.repo.resolved(commit, rules)
    t2 = time.perf_counter()
    image = await launches.find_or_build(repo, launches.rules(), ignore)
    t3 = time.perf_counter()
    for leftover in bench.scratch.iterdir():  # a hook would clean up; not timed
        shutil.rmtree(leftover)
    if commit != bench.repo.main or image != bench.expected[path]:
        raise LaunchFailed(f"{path}: got {image} at {commit}")
    return Timing((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000)


Runner = Callable[[Bench, str, Mapping[str, object]], Awaitable[Timing]]
PATHS: dict[str, Runner] = {
    "eohub_cold": eohub_launch,
    "eohub_warm": eohub_launch,
    "naive_clone": naive_launch,
    "eohub_cold_noauth": eohub_launch,
    "eohub_warm_noauth": eohub_launch,
}


async def measure(bench: Bench, count: int, *, progress: bool) -> dict[str, list[Timing]]:
    """``count`` launches per path, and as many plain ones, interleaved."""
    names = ["plain", *PATHS]
    samples: dict[str, list[Timing]] = {name: [] for name in names}
    step = max(1, count // 10)
    for i in range(count):
        shift = i % len(names)  # rotate the order: no path always follows another
        for name in names[shift:] + names[:shift]:
            if name == "plain":
                timing = await eohub_launch(bench, "eohub_cold", PLAIN)
            else:
                timing = await PATHS[name](bench, name, bench.repo_options)
            samples[name].append(timing)
        if progress and ((i + 1) % step == 0 or i + 1 == count):
            cold = statistics.median(t.total for t in samples[HEADLINE])
            naive = statistics.median(t.total for t in samples["naive_clone"])
            print(
                f"  {i + 1}/{count} launches per path; median so far: eohub cold "
                f"{cold:.1f} ms, naive clone {naive:.1f} ms",
                file=sys.stderr,
            )
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(values, 0.99), 3),
        "mean": round(statistics.fmean(values), 3),
        "max": round(max(values), 3),
    }


def summarize(samples: dict[str, list[Timing]]) -> dict[str, Any]:
    """Per path: the added time (launch by launch, minus the plain one beside it) and steps."""
    plain = [t.total for t in samples["plain"]]
    out: dict[str, Any] = {"plain_launch_ms": stats(plain)}
    for name in PATHS:
        timings = samples[name]
        out[name] = {
            "added_ms": stats([t.total - p for t, p in zip(timings, plain, strict=True)]),
            "steps_ms_p50": {
                step: round(statistics.median(getattr(t, step) for t in timings), 3)
                for step in ("policy", "resolve", "registry")
            },
        }
    return out


def median_of_rounds(rounds: list[Any]) -> Any:
    """The median of each figure over the rounds (a round's own figure when there is one)."""
    first = rounds[0]
    if isinstance(first, dict):
        return {k: median_of_rounds([r[k] for r in rounds]) for k in first}
    return round(statistics.median(rounds), 3)


def tool_version(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.stdout.strip().split()[-1] if done.stdout.strip() else "unknown"


def launch_options(git_url: str) -> dict[str, object]:
    """The options of every measured launch: the demo repository at ``REF``."""
    return {
        "environment": "from-repo",
        "size": "small",
        "group": "climate",
        "provider": "git",
        "repo": f"{git_url}/demo.git",
        "ref": REF,
    }


def expected_images(
    config: LaunchConfig,
    repo: Repo,
    options: Mapping[str, object],
    launches: Mapping[str, RepoLaunches],
    registries: Mapping[str, Registry],
) -> dict[str, str]:
    """The image each path must find; pushed once per registry, so every launch is a hit."""
    expected: dict[str, str] = {}
    for name, registry in registries.items():
        rules = launches[name].rules()
        launch = policy(config, options, rules)
        assert launch.repo is not None
        image = launch.repo.resolved(repo.main, rules).image
        assert image is not None
        expected[name] = image
        _, repository, tag = split_image(image)
        if name in ("eohub_cold", "eohub_cold_noauth"):  # one push per registry
            registry.push_image(repository, tag)  # so every launch is a cache hit
    return expected


def headline_figures(figures: Mapping[str, Any]) -> dict[str, Any]:
    """The headline: the added time of a cache hit, against the target and a naive clone."""
    headline = figures[HEADLINE]["added_ms"]
    naive = figures["naive_clone"]["added_ms"]
    return {
        "cache_hit_added_ms_p50": headline["p50"],
        "cache_hit_added_ms_p99": headline["p99"],
        "target_p99_ms": TARGET_P99_MS,
        "met": headline["p99"] <= TARGET_P99_MS,
        "headline": f"{HEADLINE}: git ls-remote on every launch, token-auth registry",
        "naive_over_eohub_cold_p50": round(naive["p50"] / headline["p50"], 2),
    }


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "eohub": importlib.metadata.version("eohub"),
        "tornado": importlib.metadata.version("tornado"),
        "git": tool_version("git", "--version"),
        "docker-registry": tool_version("docker-registry", "--version"),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    count = args.launches or (QUICK_LAUNCHES if args.quick else 300)
    print("starting git http-backend and two docker-registry (token, none)", file=sys.stderr)
    repo = make_repo(work / "git", "demo.git")
    with contextlib.ExitStack() as stack:
        git_url = stack.enter_context(git_http_server(work / "git"))
        token = stack.enter_context(start_registry(work / "registry-token", auth="token"))
        open_ = stack.enter_context(start_registry(work / "registry-none", auth="none"))
        registries = {
            "eohub_cold": token,
            "eohub_warm": token,
            "naive_clone": token,
            "eohub_cold_noauth": open_,
            "eohub_warm_noauth": open_,
        }
        launches = {
            name: repo_launches(registry, cache_seconds=0 if "cold" in name else 3600)
            for name, registry in registries.items()
        }
        options = launch_options(git_url)
        config = parse_launch_config(ENVIRONMENTS, SIZES, {}, backend="kube")
        expected = expected_images(config, repo, options, launches, registries)
        scratch = work / "clones"
        scratch.mkdir()
        bench = Bench(config, repo, options, expected, launches, scratch)
        assert token.tokens is not None
        git_runs_before = {n: launches[n].resolver.runs for n in launches}

        async def rounds() -> list[dict[str, Any]]:
            # One event loop for the whole run, as in the hub: tornado's HTTP client and
            # the registry tokens live on it.
            await measure(bench, WARMUP, progress=False)  # imports, connections, tokens
            gc.collect()
            gc.freeze()
            out = []
            for r in range(args.repeat):
                print(f"round {r + 1}/{args.repeat}: {count} launches per path", file=sys.stderr)
                out.append(summarize(await measure(bench, count, progress=True)))
            return out

        results = asyncio.run(rounds())
        git_runs = {n: launches[n].resolver.runs - git_runs_before[n] for n in launches}
        token_requests = len(token.tokens.requests)
        path = f"/v2/{split_image(expected[HEADLINE])[1]}/manifests/{repo.main}"
        heads = token.served("HEAD", path)
        manifest_heads = {str(code): heads.count(code) for code in sorted(set(heads))}
    figures = median_of_rounds(results)
    return {
        **headline_figures(figures),
        "launches_per_path": count,
        "rounds": args.repeat,
        **figures,
        "git_ls_remote_runs": git_runs,
        "registry_token_requests": token_requests,
        "registry_manifest_heads_token": manifest_heads,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_LAUNCHES} launches per path, not 300"
    )
    parser.add_argument("--launches", type=int, default=None, help="launches per path")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians (1)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eohub-bench-repo-") as folder:
        try:
            summary = run(args, Path(folder))
        except LaunchFailed as e:
            print(f"a launch failed, no figures: {e}", file=sys.stderr)
            sys.exit(1)
    print(json.dumps(summary, indent=2), file=sys.stderr)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
