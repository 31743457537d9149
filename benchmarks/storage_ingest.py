"""A sampler's round into the accounting database: eohub's ingest against a bare insert.

A storage sampler posts one round as one batch: a sample per user, group and source,
all measured at one time. The benchmark writes rounds of ``--samples`` samples
(10,000; ``--quick``: 2,000) of as many users in 50 groups, on SQLite, PostgreSQL
(psycopg) and MariaDB, each in a fresh database, and times, per round:

- **first**: ``AccountingStore.add_storage_samples`` of the first round, into empty tables;
- **again**: the same round again, as a sampler's retry sends it: every sample a duplicate;
- **next**: the next round, an hour later: every user's latest sample replaced;
- **bare**: the peer, the floor any ingest pays: the same rows as the next round
  written with one ``executemany`` ``INSERT`` into a copy of the samples table, with
  no duplicate check, no latest samples and no quota state.

``next`` over ``bare`` is the cost of what eohub does beyond storing rows (skip the
samples already stored, keep each triple's latest, bring the groups' over-quota times up
to date) as a factor. Each is run ``--repeat`` times, in new databases; the JSON holds
medians. The benchmark checks the stored rows after each round and exits with status 1
if a count is wrong.

Usage, from the repository root, with the test suite's services running::

    .tox/py/bin/python benchmarks/storage_ingest.py            # 10,000 samples, 3 runs
    .tox/py/bin/python benchmarks/storage_ingest.py --quick    # 2,000 samples

The last line of output is JSON: ``{"samples", "seconds": {database: {"first", "again",
"next", "bare"}}, "next_over_bare": {database: ratio}}``. Target (reported, not
asserted): a round of 10,000 stored in under 2 s on every database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from eohub.adapters.accounting_db import AccountingStore, create_engine_for, ensure_schema
from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.adapters.accounting_db.storage import sample_row
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import StorageSample

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `tests.support` is not an installed package

from tests.support.databases import mariadb_database, postgres_database  # noqa: E402

GROUPS = 50
TARGET_S = 2.0
DATABASES = ("sqlite", "postgresql", "mariadb")


def round_of(samples: int, at: datetime) -> list[StorageSample]:
    return [
        StorageSample(f"user{i:05d}", f"group{i % GROUPS:02d}", 2**30 + i, at, i, "/home")
        for i in range(samples)
    ]


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgresql":
        with postgres_database() as url:
            yield url
    elif kind == "mariadb":
        with mariadb_database() as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="eohub-bench-ingest-") as folder:
            yield f"sqlite:///{folder}/accounting.sqlite"


def timed(call: Callable[[], object]) -> tuple[float, object]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def stored_rows(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def one_run(kind: str, samples: int) -> dict[str, float]:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    first, following = round_of(samples, at), round_of(samples, at + timedelta(hours=1))
    with database(kind) as url:
        engine = create_engine_for(url)
        try:
            ensure_schema(engine)
            store = AccountingStore(engine)
            groups = {s.group for s in first}
            # The groups exist, each with a storage quota that the rounds go over.
            quota = {"": Limits(storage_bytes=samples // GROUPS * 2**30)}
            for name in sorted(groups):
                store.put_group(name, quotas=quota)
            samples_table = StorageRow.__table__
            seconds: dict[str, float] = {}
            for name, batch, added in (
                ("first", first, samples),
                ("again", first, 0),
                ("next", following, samples),
            ):
                seconds[name], got = timed(lambda b=batch: store.add_storage_samples(b))
                if got != added:
                    raise SystemExit(f"{kind} {name}: {got} samples added, not {added}")
            if stored_rows(engine, samples_table) != 2 * samples:  # type: ignore[arg-type]
                raise SystemExit(f"{kind}: the samples table does not hold both rounds")
            bare = sa.Table("bench_bare_samples", sa.MetaData())
            for column in samples_table.columns:
                bare.append_column(column._copy())
            bare.create(engine)
            rows = [sample_row(s) for s in following]

            def insert_bare() -> None:
                with engine.begin() as c:
                    c.execute(sa.insert(bare), rows)

            seconds["bare"], _ = timed(insert_bare)
            if stored_rows(engine, bare) != samples:
                raise SystemExit(f"{kind}: the bare table does not hold the round")
            return seconds
        finally:
            engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="2,000 samples")
    parser.add_argument("--repeat", type=int, default=3, help="runs per database; medians")
    parser.add_argument("--only", choices=DATABASES, action="append", help="one database")
    args = parser.parse_args(argv)
    samples = 2_000 if args.quick else args.samples
    result: dict[str, Any] = {"samples": samples, "seconds": {}, "next_over_bare": {}}
    for kind in args.only or DATABASES:
        runs = []
        for r in range(args.repeat):
            runs.append(one_run(kind, samples))
            shown = ", ".join(f"{k} {v:.3f} s" for k, v in runs[-1].items())
            print(f"{kind} run {r + 1}/{args.repeat}: {shown}", file=sys.stderr)
        medians = {k: round(statistics.median(run[k] for run in runs), 3) for k in runs[0]}
        result["seconds"][kind] = medians
        result["next_over_bare"][kind] = round(medians["next"] / medians["bare"], 1)
    worst = max(max(m["first"], m["next"]) for m in result["seconds"].values())
    result["target"] = {"round_s": TARGET_S, "met": worst <= TARGET_S}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
