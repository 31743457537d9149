"""Headless Debian Chromium driven by Playwright (no browser is ever downloaded)."""

from __future__ import annotations

from playwright.sync_api import Browser, Playwright

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


def launch_chromium(playwright: Playwright) -> Browser:
    """Launch Debian's Chromium headless, or fail saying how to install it."""
    path = chromium_path()
    try:
        return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=30_000)
    except Exception as e:
        raise ServiceStartError(f"Chromium at {path} did not start: {e}") from e
