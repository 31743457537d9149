"""What a failed test's report adds: the services' side of the failure.

On a loaded CI machine a failure is often only understood from the services' logs and
from where the browser was; ``tests/conftest.py`` appends these sections to the report.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from . import browser, process
from .tools import artifacts_dir

#: At most this many logs, the most recently started, each cut to its last lines.
LOGS_SHOWN, LOG_LINES = 4, 80


def failure_sections(first_started: int) -> list[tuple[str, str]]:
    """The browser's navigations, then the log tails of the processes started from index
    ``first_started`` of :data:`process.STARTED` on and of every hub still running."""
    sections = []
    if browser.NAVIGATIONS:
        sections.append(
            (
                "the browser's navigations (seconds since the test began, URL)",
                "\n".join(f"{at:7.1f}  {url}" for at, url in browser.NAVIGATIONS),
            )
        )
    shown = [
        p
        for i, p in enumerate(process.STARTED)
        if i >= first_started or (p.name == "jupyterhub" and p.running())
    ]
    for service in shown[-LOGS_SHOWN:]:
        sections.append(
            (
                f"last lines of {service.name}'s log ({service.log_path})",
                service.log_tail(LOG_LINES),
            )
        )
    return sections


def keep_report(nodeid: str, when: str, text: str, sections: list[tuple[str, str]]) -> Path:
    """Write a failed attempt's report, sections included, to ``.artifacts/failures/``.

    pytest-rerunfailures prints only the traceback of an attempt it retries, so without
    this file the services' side of a retried failure is lost once the retry passes.
    """
    folder = artifacts_dir() / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid)[-150:]
    stem = f"{time.strftime('%H%M%S')}-{name}-{when}"
    path = folder / f"{stem}.txt"
    attempt = 1
    while path.exists():  # a retry in the same second
        attempt += 1
        path = folder / f"{stem}-{attempt}.txt"
    parts = [f"{nodeid} ({when})", text, *(f"--- {title} ---\n{body}" for title, body in sections)]
    path.write_text("\n\n".join(parts), encoding="utf-8")
    return path
