"""``eohub-accounting export``: write an export to a file or stdout, with a progress bar."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from typing import TextIO

from traitlets import Unicode

from eohub.accounting.database_app import DatabaseApp
from eohub.accounting.exports.config import EXPORTS, XDMoDExport, run_export
from eohub.accounting.exports.writers import TerminalProgress
from eohub.adapters.accounting_db import AccountingStore, ensure_schema
from eohub.adapters.accounting_db.schema import OutdatedSchemaError
from eohub.domain.accounting.events import parse_time
from eohub.logs import get_logger

log = get_logger(__name__)


def _day(value: str) -> datetime:
    return parse_time(value + "T00:00:00Z" if len(value) == 10 else value)


class ExportApp(DatabaseApp):
    name = "eohub-accounting export"
    description = (
        "Export accounting data. KIND is one of: " + ", ".join(EXPORTS) + ". Example: "
        "eohub-accounting export --kind=sacct.txt --from=2026-10-01 --to=2026-11-01 "
        "--output=eohub-2026-10.log, then xdmod-shredder -r eohub -f slurm -i eohub-2026-10.log"
    )
    classes = [DatabaseApp, XDMoDExport]  # noqa: RUF012
    aliases = {  # noqa: RUF012
        **DatabaseApp.aliases,
        "kind": "ExportApp.kind",
        "from": "ExportApp.range_start",
        "to": "ExportApp.range_end",
        "group": "ExportApp.group",
        "output": "ExportApp.output",
        "cluster": "XDMoDExport.cluster",
    }

    kind = Unicode("sessions.csv", help="What to export: " + ", ".join(EXPORTS)).tag(config=True)
    range_start = Unicode(help="Start of the range (a date, UTC midnight, or an ISO time).").tag(
        config=True
    )
    range_end = Unicode(help="End of the range, exclusive.").tag(config=True)
    group = Unicode("", help="Only this group's sessions (CSV and sacct exports).").tag(
        config=True
    )
    output = Unicode("-", help="The file to write; '-' is standard output.").tag(config=True)

    def start_export(self) -> int:
        if self.kind not in EXPORTS:
            log.critical(
                "Unknown --kind {kind!r}: choose one of {choices}",
                kind=self.kind,
                choices=", ".join(EXPORTS),
            )
            return 2
        try:
            start, end = _day(self.range_start), _day(self.range_end)
        except ValueError as e:
            log.critical("--from and --to must be dates like 2026-10-01: {error}", error=e)
            return 2
        if end <= start:
            log.critical("--to must be after --from")
            return 2
        engine = self.open_engine()
        try:
            ensure_schema(engine)
        except OutdatedSchemaError as e:
            log.critical("{error}", error=e)
            return 1
        store = AccountingStore(engine)
        settings = XDMoDExport(parent=self)
        with contextlib.ExitStack() as stack:
            out: TextIO = (
                sys.stdout
                if self.output == "-"
                else stack.enter_context(open(self.output, "w", newline="", encoding="utf-8"))
            )
            stack.callback(engine.dispose)
            progress = stack.enter_context(TerminalProgress(self.kind))
            written = run_export(
                self.kind,
                store,
                settings,
                out,
                start,
                end,
                group=self.group or None,
                progress=progress,
            )
        log.info("Exported {rows} rows of {kind}", rows=written, kind=self.kind)
        return 0

    def start(self) -> None:
        self.exit(self.start_export())
