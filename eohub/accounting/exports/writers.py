"""Write exports to text streams: XDMoD sacct lines, storage JSON, and CSV.

This is thin glue. The store yields records (lazily, so a year of sessions never sits in
memory). :mod:`eohub.domain.reports.xdmod` and :mod:`eohub.domain.reports.csv_report` turn
them into text,
and these functions write it out, reporting progress every :data:`PROGRESS_EVERY` records.

Open CSV outputs with ``newline=""``, as :mod:`csv` requires. Open every output as UTF-8;
the sacct lines are pure ASCII anyway.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from types import TracebackType
from typing import Any, TextIO, TypeVar

from eohub.domain.accounting.session_record import SessionFields, StorageSample, UsageRow
from eohub.domain.reports.csv_report import (
    SESSION_HEADER,
    USAGE_HEADER,
    session_rows,
    usage_rows,
)
from eohub.domain.reports.xdmod import DEFAULT_SACCT_OPTIONS, SacctOptions, sacct_lines
from eohub.domain.reports.xdmod_storage import StorageOptions, storage_record

#: ``progress(done, total)``: records read so far, and the expected count if known.
Progress = Callable[[int, int | None], None]

PROGRESS_EVERY = 1000

T = TypeVar("T")


def counted(items: Iterable[T], total: int | None, progress: Progress | None) -> Iterator[T]:
    """Yield ``items`` and report progress.

    ``progress`` is called once before the first item, after every
    :data:`PROGRESS_EVERY` items and once at the end, with the final count.
    """
    if progress is None:
        yield from items
        return
    done = 0
    progress(done, total)
    for item in items:
        yield item
        done += 1
        if done % PROGRESS_EVERY == 0:
            progress(done, total)
    if done % PROGRESS_EVERY:
        progress(done, total)


def write_sacct(
    records: Iterable[SessionFields],
    out: TextIO,
    *,
    total: int | None = None,
    progress: Progress | None = None,
    options: SacctOptions = DEFAULT_SACCT_OPTIONS,
) -> int:
    """Write one XDMoD Slurm line per stopped session; return the number of lines.

    Open sessions are read and counted for progress, but not written (see
    :func:`eohub.domain.reports.xdmod.sacct_lines`). The file is ready for
    ``xdmod-shredder -f slurm -i``.
    """
    written = 0
    for line in sacct_lines(counted(records, total, progress), options):
        out.write(line + "\n")
        written += 1
    return written


def write_sessions_csv(
    records: Iterable[SessionFields],
    out: TextIO,
    *,
    now: datetime,
    total: int | None = None,
    progress: Progress | None = None,
    header: bool = True,
) -> int:
    """Write a header (unless ``header`` is false: a part of a larger export) and one
    row per session; return the number of rows.

    Open sessions count up to ``now``.
    """
    writer = csv.writer(out)
    if header:
        writer.writerow(SESSION_HEADER)
    return write_csv_rows(writer, out, session_rows(counted(records, total, progress), now))


def write_csv_rows(writer: Any, out: TextIO, rows: Iterable[list[str]]) -> int:
    """Write ``rows`` as ``writer`` would; return how many.

    Nearly every row needs no quoting, and joining it is three times quicker than the
    :mod:`csv` writer, which matters at a million rows. A row with a cell that holds a
    delimiter, a quote or a line break goes through ``writer``, whose output this
    matches (``excel`` dialect: ``,``, minimal quoting, ``\\r\\n``).
    """
    written = 0
    write = out.write
    for row in rows:
        line = ",".join(row)
        if (
            line.count(",") == len(row) - 1
            and '"' not in line
            and "\n" not in line
            and "\r" not in line
            and line
        ):
            write(line + "\r\n")
        else:
            writer.writerow(row)
        written += 1
    return written


def write_usage_csv(
    rows: Iterable[UsageRow],
    out: TextIO,
    *,
    total: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Write a header and one row per (period, group, user); return the number of rows."""
    writer = csv.writer(out)
    writer.writerow(USAGE_HEADER)
    return write_csv_rows(writer, out, usage_rows(counted(rows, total, progress)))


def write_storage_json(
    samples: Iterable[StorageSample],
    out: TextIO,
    *,
    options: StorageOptions,
    total: int | None = None,
    progress: Progress | None = None,
) -> int:
    """Write XDMoD storage JSON (one array, an entry per line); return the entry count.

    Entries are written as they come, so the output never has to fit in memory.
    """
    written = 0
    out.write("[")
    for sample in counted(samples, total, progress):
        out.write(",\n" if written else "\n")
        out.write(json.dumps(storage_record(sample, options), sort_keys=True))
        written += 1
    out.write("\n]\n" if written else "]\n")
    return written


class TerminalProgress:
    """A progress bar on a terminal, for the export CLI. Use it as a :data:`Progress`.

    It draws only when ``stream`` is a TTY. When the stream is a pipe or a log file, it
    writes nothing, so that scripted exports stay clean. Call :meth:`close`, or use it as
    a context manager, to end the bar's line.

    Parameters
    ----------
    label
        Shown before the bar.
    stream
        Where to draw; standard error by default (looked up when the bar is made, so
        redirections apply).
    width
        The bar's width in characters.
    """

    def __init__(self, label: str = "export", *, stream: TextIO | None = None, width: int = 30):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = _is_tty(self.stream)
        self._drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            share = min(done / total, 1.0)
            filled = int(self.width * share)
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"\r{self.label} [{bar}] {share:4.0%} {done}/{total}"
        else:
            text = f"\r{self.label} {done} records"
        self.stream.write(text)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the line the bar was drawn on, if it was drawn."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
