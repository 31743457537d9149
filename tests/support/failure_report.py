"""What a failed test's report adds: the services' side of the failure.

On a loaded CI machine a failure is often only understood from the services' logs and
from where the browser was; ``tests/conftest.py`` appends these sections to the report.
"""

from __future__ import annotations

from . import browser, process

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
