"""Headless Debian Chromium driven by Playwright (no browser is ever downloaded)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Frame, Page, Playwright, expect

from .process import ServiceStartError
from .tools import chromium_path

# Chromium on this closed network: no sandbox as root, and no background connections
# to Google services, which would fail many times over and slow every page.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


# How long a page waits for a navigation, an element or an `expect`. Playwright's
# defaults (30 s, and 5 s for `expect`) hold on an idle machine; CI runs the hub tests on
# two shared cores beside Chromium, where a hub's answer can take longer. These are
# waits, not timings: a passing test never waits them out, and a test that must see
# something quickly says so with its own timeout.
WAIT_MS = 90_000
EXPECT_MS = 30_000


#: Every main-frame navigation of the pages opened since the last :func:`forget_navigations`,
#: as (seconds since then, URL): a failed test's report lists them (tests/conftest.py).
NAVIGATIONS: list[tuple[float, str]] = []
_since = time.monotonic()


def forget_navigations() -> None:
    global _since
    NAVIGATIONS.clear()
    _since = time.monotonic()


def _record(page: Page) -> None:
    def navigated(frame: Frame) -> None:
        if frame == page.main_frame:
            NAVIGATIONS.append((round(time.monotonic() - _since, 1), frame.url))

    page.on("framenavigated", navigated)


def patient(context: BrowserContext) -> BrowserContext:
    """Give a context the harness's waits and record its pages' navigations.

    The contexts of :func:`launch_chromium`'s browser get this already; a context made
    another way (``launch_persistent_context``) is passed through it by its test."""
    context.set_default_timeout(WAIT_MS)
    context.on("page", _record)
    for page in context.pages:
        _record(page)
    return context


def _patient(open_context: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(open_context)
    def opened(*args: Any, **kwargs: Any) -> Any:
        made = open_context(*args, **kwargs)
        patient(made if isinstance(made, BrowserContext) else made.context)
        return made

    return opened


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch Debian's Chromium headless, or fail saying how to install it.

    Its contexts and pages wait :data:`WAIT_MS` by default, and ``expect`` waits
    :data:`EXPECT_MS`.
    """
    path = chromium_path()
    try:
        browser = playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, timeout=30_000
        )
    except Exception as e:
        raise ServiceStartError(f"Chromium at {path} did not start: {e}") from e
    expect.set_options(timeout=EXPECT_MS)
    browser.new_context = _patient(browser.new_context)  # type: ignore[method-assign]
    browser.new_page = _patient(browser.new_page)  # type: ignore[method-assign]
    return browser


_HANDLER_BOUND = """([selector, event]) => {
  const element = document.querySelector(selector);
  const events = element && window.jQuery && window.jQuery._data(element, "events");
  return Boolean(events && events[event]);
}"""


def wait_for_hub_handler(page: Page, selector: str, event: str = "click") -> None:
    """Wait until JupyterHub's own script has bound its ``event`` handler to ``selector``.

    The hub's pages (home, token) bind their buttons in RequireJS callbacks, which run
    on a timer after the modules load, and so after the page's ``load`` event. A click
    in between does nothing, or submits the token form as a plain GET to
    ``/hub/token?``. jQuery keeps each element's handlers, so the wait is exact."""
    page.wait_for_function(_HANDLER_BOUND, arg=[selector, event])
