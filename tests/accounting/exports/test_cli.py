"""``eohub-accounting export``: the files it writes and the arguments it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eohub.accounting.exports.cli import ExportApp
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from tests.accounting.cli_support import run
from tests.support.accounting import Clock, fresh_store


def _seed(url: str) -> AccountingStore:
    store = fresh_store(url, Clock(datetime(2026, 3, 15, tzinfo=UTC)))
    store.put_group("climate", allocation=Allocation.parse("month"))
    events = []
    for i in range(30):
        at = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(hours=7 * i)
        events.append(
            start_event_json(
                user=f"u{i % 4}", server="", started_at=at, group="climate", cpu=0.25, gpus=i % 2
            )
        )
        events.append(
            stop_event_json(
                user=f"u{i % 4}", server="", started_at=at, stopped_at=at + timedelta(hours=2)
            )
        )
    store.ingest(parse_batch({"events": events}))
    return store


def test_export_writes_sacct_and_csv_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    _seed(url).engine.dispose()
    out = tmp_path / "feb.log"
    args = [f"--db-url={url}", "--from=2026-02-01", "--to=2026-03-01"]
    result = run(
        "export", "--kind=sacct.txt", f"--output={out}", "--cluster=eo1", *args, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 30
    assert all(len(line.split("|")) == 26 for line in lines)
    assert lines[0].split("|")[2] == "eo1"
    assert sum("gres/gpu=1" in line for line in lines) == 15
    again = tmp_path / "again.log"
    run("export", "--kind=sacct.txt", f"--output={again}", "--cluster=eo1", *args, cwd=tmp_path)
    assert again.read_text() == out.read_text()  # stable job ids across re-exports

    csv_out = run("export", "--kind=sessions.csv", *args, cwd=tmp_path)
    assert csv_out.returncode == 0, csv_out.stderr
    rows = csv_out.stdout.splitlines()
    assert rows[0].startswith("id,user,server,group")
    assert len(rows) == 31
    usage = run("export", "--kind=usage.csv", *args, cwd=tmp_path)
    assert "climate" in usage.stdout


def test_export_rejects_bad_arguments_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'y.sqlite'}"
    bad_kind = run(
        "export",
        f"--db-url={url}",
        "--kind=pdf",
        "--from=2026-01-01",
        "--to=2026-02-01",
        cwd=tmp_path,
    )
    assert bad_kind.returncode == 2
    assert "Unknown --kind 'pdf'" in bad_kind.stderr
    bad_date = run(
        "export", f"--db-url={url}", "--from=last week", "--to=2026-02-01", cwd=tmp_path
    )
    assert bad_date.returncode == 2
    assert "--from and --to must be dates" in bad_date.stderr


@pytest.mark.parametrize(
    ("kind", "start", "end", "message"),
    [
        ("pdf", "2026-01-01", "2026-02-01", "Unknown --kind 'pdf': choose one of sessions.csv"),
        ("usage.csv", "", "2026-02-01", "--from and --to must be dates like 2026-10-01"),
        ("usage.csv", "2026-01-01", "01/02/2026", "--from and --to must be dates like"),
        ("usage.csv", "2026-02-01", "2026-02-01", "--to must be after --from"),
        ("usage.csv", "2026-02-01T12:00:00Z", "2026-02-01", "--to must be after --from"),
    ],
)
def test_bad_arguments_are_refused_before_the_database_is_opened(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    start: str,
    end: str,
    message: str,
) -> None:
    url = f"sqlite:///{tmp_path / 'never.sqlite'}"
    app = ExportApp(db_url=url, kind=kind, range_start=start, range_end=end)
    assert app.start_export() == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never.sqlite").exists()


def test_the_store_is_written_to_the_output_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'z.sqlite'}"
    _seed(url).engine.dispose()
    out = tmp_path / "usage.csv"
    app = ExportApp(
        db_url=url,
        kind="usage.csv",
        range_start="2026-02-01",
        range_end="2026-03-01",
        group="climate",
        output=str(out),
    )
    assert app.start_export() == 0
    assert "climate" in out.read_text()
