"""A parallel export's worker process: settings, then one part a line, one answer a line."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eohub.accounting.exports.parallel import Part
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from tests.support.accounting import Clock, fresh_store

FROM = datetime(2026, 2, 1, tzinfo=UTC)
TO = datetime(2026, 3, 1, tzinfo=UTC)
WORKER = [sys.executable, "-m", "eohub.accounting.exports.worker"]


def seeded(url: str, sessions: int) -> None:
    store = fresh_store(url, Clock(datetime(2026, 3, 15, tzinfo=UTC)))
    store.put_group("climate", allocation=Allocation.parse("month"))
    events = []
    for i in range(sessions):
        at = FROM + timedelta(hours=5 * i)
        stop = at + timedelta(hours=1)
        events.append(
            start_event_json(user="u", server=str(i), started_at=at, group="climate", cpu=1)
        )
        events.append(stop_event_json(user="u", server=str(i), started_at=at, stopped_at=stop))
    store.ingest(parse_batch({"events": events}))
    store.engine.dispose()


def part(path: Path, ids: tuple[int, int]) -> str:
    now = datetime(2026, 3, 15)  # naive UTC, as the rows' times
    return json.dumps(Part("sessions.csv", FROM, TO, None, ids, now, None, str(path)).to_json())


def test_each_part_is_written_to_its_file_and_answered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    seeded(url, 6)
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    lines = [json.dumps({"db_url": url}), part(first, (1, 4)), part(second, (5, 100))]
    result = subprocess.run(
        WORKER, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert answers == [{"read": 4, "written": 4}, {"read": 2, "written": 2}]
    assert len(first.read_text().splitlines()) == 4  # no header: the parts are joined
    assert len(second.read_text().splitlines()) == 2


def test_a_failing_part_ends_the_worker_with_a_traceback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"  # no tables
    lines = [json.dumps({"db_url": url}), part(tmp_path / "x.csv", (1, 2))]
    result = subprocess.run(
        WORKER, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" in result.stderr
    assert "no such table" in result.stderr
