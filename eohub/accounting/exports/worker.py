"""A worker of a parallel export: ``python -m eohub.accounting.exports.worker``.

It reads a first line ``{"db_url": ...}`` and then one :class:`Part` per line from
standard input, writes each part, and answers each with a line
``{"read": N, "written": M}`` on standard output. A failure ends it with a traceback on
standard error, which :mod:`eohub.accounting.exports.parallel` reports.
"""

from __future__ import annotations

import json
import sys

from eohub.accounting.exports.parallel import Part, write_part
from eohub.adapters.accounting_db.schema import create_engine_for
from eohub.adapters.accounting_db.store import AccountingStore


def main() -> None:
    settings = json.loads(sys.stdin.readline())
    engine = create_engine_for(settings["db_url"])
    try:
        store = AccountingStore(engine)
        for line in sys.stdin:
            read, written = write_part(store, Part.from_json(json.loads(line)))
            print(json.dumps({"read": read, "written": written}), flush=True)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
