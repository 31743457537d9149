"""Large session exports, written by several processes at once.

A year of sessions is a million rows, and formatting them is pure Python: one process
writes roughly 120k rows a second. Rows are independent, so the export is cut into id
ranges ("parts"). Worker processes (``python -m eohub.accounting.exports.worker``) each
read and format their parts into temporary files, and this process copies the parts to
the output in id order as they finish. The output is byte for byte what one process
would write.

The workers are plain subprocesses, not :mod:`multiprocessing`: its ``spawn`` start
re-imports the caller's main module, which a hub admin's script or a notebook may not
survive, and ``fork`` is unsafe in the service, which exports from a thread. A job reaches
a worker on its standard input, so the database URL (and any password in it) never
appears in a process listing.

Each worker opens its own connection, so each part is read in its own transaction; a
session that stops while an export runs appears once, as its part saw it. An in-memory
SQLite database cannot be shared, so it is always exported by one process.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

from sqlalchemy import Engine

from eohub.accounting.exports.writers import Progress, write_sacct, write_sessions_csv
from eohub.adapters.accounting_db.store import AccountingStore
from eohub.domain.reports.csv_report import SESSION_HEADER
from eohub.domain.reports.xdmod import SacctOptions

#: The exports that read sessions by id, and so can be cut into parts.
SESSION_EXPORTS = ("sessions.csv", "sacct.txt")


class ExportWorkerError(RuntimeError):
    """A worker process failed; the message holds the end of its error output."""


@dataclass(frozen=True)
class Part:
    """One id range of an export, to be written (without a header) to ``path``."""

    kind: str
    start: datetime
    end: datetime
    group: str | None
    ids: tuple[int, int]
    now: datetime
    sacct: SacctOptions | None
    path: str

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "now": self.now.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Part:
        sacct = data["sacct"]
        return cls(
            kind=data["kind"],
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            group=data["group"],
            ids=(int(data["ids"][0]), int(data["ids"][1])),
            now=datetime.fromisoformat(data["now"]),
            sacct=None if sacct is None else SacctOptions(**sacct),
            path=data["path"],
        )


def write_part(store: AccountingStore, part: Part) -> tuple[int, int]:
    """Write one part; return (sessions read, rows written)."""
    read = 0

    def count(done: int, _total: int | None) -> None:
        nonlocal read
        read = done

    records = store.iter_session_rows(
        part.start, part.end, group=part.group, ended=part.kind == "sacct.txt", ids=part.ids
    )
    with open(part.path, "w", newline="", encoding="utf-8") as out:
        if part.sacct is not None:
            written = write_sacct(records, out, options=part.sacct, progress=count)
        else:
            written = write_sessions_csv(records, out, now=part.now, progress=count, header=False)
    return read, written


def shareable(engine: Engine) -> bool:
    """Whether other processes can open the database ``engine`` uses."""
    url = engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


def id_ranges(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """``[low, high]`` cut into at most ``parts`` contiguous inclusive ranges."""
    count = max(1, min(parts, high - low + 1))
    size, extra = divmod(high - low + 1, count)
    ranges, first = [], low
    for k in range(count):
        last = first + size + (1 if k < extra else 0) - 1
        ranges.append((first, last))
        first = last + 1
    return ranges


class _Worker:
    """One worker process, given its parts up front; it answers a line per part, in order."""

    def __init__(self, db_url: str, parts: list[Part], folder: Path, number: int) -> None:
        self.errors = (folder / f"worker-{number}.err").open("w+", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eohub.accounting.exports.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
        )
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write(json.dumps({"db_url": db_url}) + "\n")
        stdin.writelines(json.dumps(p.to_json()) + "\n" for p in parts)
        stdin.close()

    def result(self) -> tuple[int, int]:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        line = stdout.readline()
        if not line:
            self.process.wait()
            self.errors.seek(0)
            tail = self.errors.read()[-2000:].strip()
            raise ExportWorkerError(
                f"An export worker exited with status {self.process.returncode}: {tail}"
            )
        answer = json.loads(line)
        return int(answer["read"]), int(answer["written"])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.errors.close()


def export_in_parts(
    kind: str,
    store: AccountingStore,
    out: TextIO,
    start: datetime,
    end: datetime,
    *,
    group: str | None,
    now: datetime,
    sacct: SacctOptions | None,
    workers: int,
    parts: int,
    total: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the ``kind`` export with ``workers`` processes over ``parts`` id ranges.

    Returns the rows written. Progress is reported as each part is copied out. If
    anything fails, or the reader goes away, the workers are stopped.
    """
    if kind not in SESSION_EXPORTS:
        raise ValueError(f"{kind!r} cannot be exported in parts")
    if kind == "sessions.csv":
        csv.writer(out).writerow(SESSION_HEADER)
    if progress is not None:
        progress(0, total)
    bounds = store.session_id_bounds(start, end, group=group, ended=kind == "sacct.txt")
    if bounds is None:
        return 0
    written = read = 0
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eohub-export-")))
        jobs = [
            Part(kind, start, end, group, ids, now, sacct, str(folder / f"part-{k:05d}"))
            # A worker's whole list is written to its pipe at once: capped, it fits.
            for k, ids in enumerate(id_ranges(*bounds, min(parts, 100 * workers)))
        ]
        # Parts go round-robin, so reading the workers' answers in turn reads the parts
        # in id order.
        count = min(workers, len(jobs))
        db_url = store.engine.url.render_as_string(hide_password=False)
        pool = []
        for w in range(count):
            pool.append(_Worker(db_url, jobs[w::count], folder, w))
            stack.callback(pool[-1].close)
        for k, job in enumerate(jobs):
            part_read, part_written = pool[k % count].result()
            with open(job.path, newline="", encoding="utf-8") as part:
                shutil.copyfileobj(part, out, 1 << 20)
            Path(job.path).unlink()
            read += part_read
            written += part_written
            if progress is not None:
                progress(read, total)
    return written
