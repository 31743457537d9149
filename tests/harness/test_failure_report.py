"""A failed test's report shows the services' side: their logs and the browser's path."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.support import browser as browsers
from tests.support import process
from tests.support.failure_report import LOG_LINES, failure_sections, keep_report
from tests.support.process import start_process

PRINT_AND_WAIT = "import sys, time; print(sys.argv[1], flush=True); time.sleep(60)"


def _started(name: str, said: str, tmp_path: Path) -> process.ServiceProcess:
    service = start_process(
        name, [sys.executable, "-c", PRINT_AND_WAIT, said], log_path=tmp_path / f"{said}.log"
    )
    service.wait_until(lambda: said in service.log_tail(), timeout=30, what="printing")
    return service


def test_the_logs_of_what_the_test_started_and_of_running_hubs_are_shown(
    tmp_path: Path,
) -> None:
    browsers.forget_navigations()
    earlier_hub = _started("jupyterhub", "shared-hub-line", tmp_path)
    earlier_stopped = _started("jupyterhub", "stopped-hub-line", tmp_path)
    earlier_stopped.stop()
    earlier_other = _started("slapd", "shared-slapd-line", tmp_path)
    first = len(process.STARTED)
    mine = _started("accounting", "this-tests-line", tmp_path)
    try:
        sections = dict(failure_sections(first))
    finally:
        for service in (earlier_hub, earlier_other, mine):
            service.stop()

    shown = "\n".join(sections.values())
    assert "this-tests-line" in shown  # started by the test
    assert "shared-hub-line" in shown  # a hub still running, such as a module's
    assert "stopped-hub-line" not in shown  # a hub that is gone
    assert "shared-slapd-line" not in shown  # a session's service, not this test's
    assert f"last lines of accounting's log ({mine.log_path})" in sections


def test_only_the_last_lines_are_shown(tmp_path: Path) -> None:
    first = len(process.STARTED)
    lines = "\n".join(f"line {i}" for i in range(LOG_LINES + 20))
    service = start_process(
        "chatty",
        [sys.executable, "-c", f"print({lines!r}, flush=True); import time; time.sleep(60)"],
        log_path=tmp_path / "chatty.log",
    )
    try:
        service.wait_until(
            lambda: f"line {LOG_LINES + 19}" in service.log_tail(), timeout=30, what="done"
        )
        (log,) = [text for title, text in failure_sections(first) if "chatty" in title]
    finally:
        service.stop()
    assert log.splitlines() == [f"line {i}" for i in range(20, LOG_LINES + 20)]


def test_the_browsers_navigations_are_listed_in_order(browser: Browser) -> None:
    browsers.forget_navigations()
    page = browser.new_page()
    page.goto("data:text/html,<p>one</p>")
    time.sleep(0.2)
    page.goto("data:text/html,<p>two</p>")
    page.close()

    first = len(process.STARTED)
    (title, listing), *_ = failure_sections(first)
    assert title.startswith("the browser's navigations")
    urls = [line.split(maxsplit=1)[1] for line in listing.splitlines()]
    assert urls == ["data:text/html,<p>one</p>", "data:text/html,<p>two</p>"]
    seconds = [float(line.split()[0]) for line in listing.splitlines()]
    assert seconds == sorted(seconds)


def test_a_failed_attempts_report_is_kept_in_the_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A retried attempt's sections are printed nowhere: the file is where they are read.
    monkeypatch.setenv("EOHUB_TEST_ARTIFACTS", str(tmp_path))
    sections = [("last lines of jupyterhub's log (hub.log)", "[E] Unhandled error starting")]
    kept = keep_report("tests/x/test_y.py::test_z[a/b c]", "call", "AssertionError: 500", sections)
    assert kept.parent == tmp_path / "failures"
    assert kept.name.endswith("-tests_x_test_y.py_test_z_a_b_c_-call.txt")
    text = kept.read_text()
    assert text.startswith("tests/x/test_y.py::test_z[a/b c] (call)\n\nAssertionError: 500")
    assert "--- last lines of jupyterhub's log (hub.log) ---\n[E] Unhandled error starting" in text
