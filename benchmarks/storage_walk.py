"""The storage walk on a 100,000-file tree: its time against ``du``, and its memory.

The benchmark builds a tree of ``--files`` files (100,000; ``--quick``: 10,000) under ten
users' folders, nested two folders deep, with file sizes from 0 to 8 KiB and one file in a
hundred (``--link-every``) a hard link to a file in another folder, then, on the same warm tree:

- **walk**: :func:`eohub.storage.walk.walk` of the whole tree, in a fresh child process
  per run (timed inside the child, from the call to its return), ``--repeat`` runs;
- **du**: GNU ``du -s -B1 -x`` of the whole tree, ``--repeat`` runs, timed from the
  parent (a process start, about 1 ms, included);
- **memory**: the child's peak resident set (``VmHWM``) after the walk, less the same
  before it (the interpreter and the module: the walk's own cost is the difference),
  and, in one more run, the peak of Python's allocations during the walk
  (``tracemalloc``);
- **sampler**: ``FilesystemSampler.measure()`` with its defaults (the ``{user}``
  layout, a pause of 10 ms every 10,000 entries), what one round of the program does.

The walk's bytes and entries must equal ``du -s -B1 -x`` and ``du -s -x --inodes``, or
the benchmark exits with status 1. The caches are warm (the tree was just written and
walked): a cold cache on a busy file server is slower for both, by the disk's seeks.

Usage, from the repository root::

    .tox/py/bin/python benchmarks/storage_walk.py            # 100,000 files, 5 runs each
    .tox/py/bin/python benchmarks/storage_walk.py --quick    # 10,000 files

The last line of output is JSON: ``{"files", "walk_s", "du_s", "ratio",
"walk_rss_mib", "tracemalloc_peak_mib", "sampler_s"}`` (ratio = walk over du, medians).
Targets (reported, not asserted): the walk within 3x du's time, under 64 MiB of memory
over the interpreter's, and the sampler's round under 10 s for 100,000 files.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eohub.storage.filesystem import FilesystemSampler

USERS = 10
FOLDERS = 10  # per level, two levels: 100 leaf folders per user
TARGETS = {"ratio": 3.0, "walk_rss_mib": 64.0, "sampler_s": 10.0}

# The child reads its peak resident set from VmHWM: ru_maxrss survives exec on Linux,
# so a child would report the benchmark's own peak.
CHILD = """
import json, sys, time
from eohub.storage.walk import walk

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

root, mode = sys.argv[1], sys.argv[2]
if mode == "tracemalloc":
    import tracemalloc
    tracemalloc.start()
before = peak_kib()
began = time.perf_counter()
usage = walk(root)
seconds = time.perf_counter() - began
peak = tracemalloc.get_traced_memory()[1] if mode == "tracemalloc" else 0
print(json.dumps({"seconds": seconds, "bytes": usage.bytes, "entries": usage.entries,
                  "rss_before_kib": before, "rss_kib": peak_kib(), "tracemalloc_peak": peak}))
"""


def build_tree(root: Path, files: int, seed: int, link_every: int) -> dict[str, int]:
    """Ten users' trees holding ``files`` files; returns what was made."""
    rng = random.Random(seed)  # noqa: S311 - a repeatable tree, not a secret
    per_leaf = max(1, files // (USERS * FOLDERS * FOLDERS))
    made = {"regular_files": 0, "folders": 0, "hard_links": 0}
    leaves: list[Path] = []
    for u in range(USERS):
        for a in range(FOLDERS):
            for b in range(FOLDERS):
                leaf = root / f"user{u:02d}" / f"project{a}" / f"run{b}"
                leaf.mkdir(parents=True)
                leaves.append(leaf)
    made["folders"] = len(leaves) + USERS * (FOLDERS + 1)
    written: list[Path] = []
    for i in range(files):
        leaf = leaves[(i // per_leaf) % len(leaves)]
        path = leaf / f"f{i:06d}.dat"
        if i % link_every == link_every - 1:  # a second name of a file in another folder
            os.link(rng.choice(written[-1000:]), path)
            made["hard_links"] += 1
            continue
        path.write_bytes(b"\0" * rng.randrange(0, 8193))
        written.append(path)
        made["regular_files"] += 1
    return made


def child(root: Path, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def du(root: Path, *options: str) -> tuple[float, int]:
    began = time.perf_counter()
    done = subprocess.run(
        ["du", "-s", "-x", *options, str(root)], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - began, int(done.stdout.split()[0])


def sampler_round(root: Path) -> tuple[float, int]:
    sampler = FilesystemSampler(roots=[{"path": str(root), "layout": "{user}"}])
    began = time.perf_counter()
    samples = asyncio.run(sampler.measure())
    return time.perf_counter() - began, sum(s.file_count for s in samples)


def measure(root: Path, repeat: int) -> dict[str, Any]:
    walks = []
    for r in range(repeat):
        walks.append(child(root, "walk"))
        print(f"  walk {r + 1}/{repeat}: {walks[-1]['seconds']:.3f} s", file=sys.stderr)
    dus = []
    for r in range(repeat):
        seconds, total = du(root, "-B1")
        dus.append((seconds, total))
        print(f"  du   {r + 1}/{repeat}: {seconds:.3f} s", file=sys.stderr)
    _, inodes = du(root, "--inodes")
    traced = child(root, "tracemalloc")
    rounds = [sampler_round(root) for _ in range(repeat)]
    walk_s = statistics.median(w["seconds"] for w in walks)
    du_s = statistics.median(s for s, _ in dus)
    return {
        "walk_s": round(walk_s, 3),
        "du_s": round(du_s, 3),
        "ratio": round(walk_s / du_s, 2),
        "walk_rss_mib": round(max(w["rss_kib"] - w["rss_before_kib"] for w in walks) / 1024, 2),
        "peak_rss_mib": round(max(w["rss_kib"] for w in walks) / 1024, 1),
        "tracemalloc_peak_mib": round(traced["tracemalloc_peak"] / 1024**2, 2),
        "sampler_s": round(statistics.median(s for s, _ in rounds), 3),
        "walk_bytes": walks[0]["bytes"],
        "du_bytes": dus[0][1],
        "walk_entries": walks[0]["entries"],
        "du_inodes": inodes,
        "sampler_files": rounds[0][1],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 files")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; medians (5)")
    parser.add_argument("--dir", default=None, help="where to build the tree (a temp folder)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--link-every",
        type=int,
        default=100,
        help="every Nth file is a hard link (100); 2 makes half of them links, the walk's "
        "worst case for memory",
    )
    args = parser.parse_args(argv)
    files = 10_000 if args.quick else args.files
    base = Path(tempfile.mkdtemp(prefix="eohub-bench-walk-", dir=args.dir))
    try:
        began = time.perf_counter()
        made = build_tree(base / "home", files, args.seed, max(2, args.link_every))
        print(f"built {made} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        child(base / "home", "walk")  # warm the caches and the imports
        figures = measure(base / "home", args.repeat)
    finally:
        shutil.rmtree(base)
    if not report(files, args.repeat, made, figures):
        print("the walk and du disagree: the figures are not comparable", file=sys.stderr)
        raise SystemExit(1)


HEADLINE = ("walk_s", "du_s", "ratio", "walk_rss_mib", "tracemalloc_peak_mib", "sampler_s")


def report(files: int, repeat: int, made: dict[str, int], figures: dict[str, Any]) -> bool:
    """Print the detail to stderr and the headline JSON; whether the walk matched du."""
    same = (figures["walk_bytes"], figures["walk_entries"]) == (
        figures["du_bytes"],
        figures["du_inodes"],
    )
    du_version = subprocess.run(["du", "--version"], capture_output=True, text=True, check=True)
    detail = {
        "files": files,
        **made,
        "repeat": repeat,
        **figures,
        "same_as_du": same,
        "targets": TARGETS,
        "met": {k: figures[k] <= v for k, v in TARGETS.items()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "versions": {
            "python": platform.python_version(),
            "eohub": importlib.metadata.version("eohub"),
            "du": du_version.stdout.splitlines()[0],
        },
    }
    print(json.dumps(detail, indent=2), file=sys.stderr)
    print(json.dumps({"files": files, **{k: figures[k] for k in HEADLINE}}))
    return same


if __name__ == "__main__":
    main()
