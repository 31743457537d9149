"""Fixtures for real services; each is started on a free loopback port and stopped by PID.

A service that cannot start fails the test with its log tail (ServiceStartError); none
is ever skipped. Session-scoped services are shared; the ``*_factory`` fixtures start a
fresh one per call for tests that need their own configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support import browser as browsers
from tests.support import hub as hub_harness
from tests.support import process as processes
from tests.support.browser import launch_chromium
from tests.support.databases import mariadb_database, postgres_database
from tests.support.failure_report import failure_sections, keep_report
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub, start_hub
from tests.support.oidc import OIDCProvider, ProviderSettings, start_oidc_provider
from tests.support.process import ServiceProcess
from tests.support.slapd import Directory, start_slapd
from tests.support.tools import DATA_DIR, artifacts_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that asks for hub_factory starts a hub; it needs no marker of its own.
    for item in items:
        if "hub_factory" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.hub)


@pytest.fixture(autouse=True)
def _eohub_logs_reach_caplog() -> Iterator[None]:
    # A plugin built in a test attaches the eohub loggers to its application's logger
    # (eohub.logs.attach), which may not propagate; the next test must see them again.
    tree = logging.getLogger("eohub")
    yield
    tree.parent = logging.getLogger()
    tree._eohub_attached = False  # type: ignore[attr-defined]
    tree.setLevel(tree.level)  # forget the levels enabled under the old parent


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before any fixture of the test runs, module- and session-scoped ones included.
    hub_harness.hub_allowed = item.get_closest_marker("hub") is not None
    item.stash[_FIRST_STARTED] = len(processes.STARTED)
    browsers.forget_navigations()


_FIRST_STARTED = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        first = item.stash.get(_FIRST_STARTED, len(processes.STARTED))
        report.sections.extend(failure_sections(first))
        if (
            report.when == "call"
            and item.get_closest_marker("hub") is not None
            and item.get_closest_marker("shared_servers") is None
        ):
            # A retry (pytest-rerunfailures keeps module-scoped hubs), or the module's
            # next test, must not meet the failed test's servers, pending ones above all.
            stopped = hub_harness.stop_servers_of_running_hubs()
            report.sections.append(("servers stopped after the failure", stopped))
        try:
            keep_report(item.nodeid, report.when, report.longreprtext, report.sections)
        except OSError as e:  # a full or read-only disk must not become an INTERNALERROR
            report.sections.append(("report not kept", repr(e)))
    return report


@pytest.fixture(scope="session")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    """slapd with LDAPS, StartTLS, memberof and refint, loaded from tests/data/*.ldif."""
    proc, directory = start_slapd(
        tmp_path_factory.mktemp("slapd"), sorted(DATA_DIR.glob("*.ldif"))
    )
    yield directory
    proc.stop()


@pytest.fixture
def directory_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., tuple[ServiceProcess, Directory]]]:
    """A slapd of the test's own, for tests that change or stop the directory."""
    started: list[ServiceProcess] = []

    def start(*, anonymous_read: bool = False) -> tuple[ServiceProcess, Directory]:
        proc, directory = start_slapd(
            tmp_path_factory.mktemp("slapd"),
            sorted(DATA_DIR.glob("*.ldif")),
            anonymous_read=anonymous_read,
        )
        started.append(proc)
        return proc, directory

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def oidc_provider_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OIDCProvider]]:
    """Start a provider with the given ``ProviderSettings`` (accounts, clients, TTLs, keys)."""
    started: list[ServiceProcess] = []

    def start(settings: ProviderSettings | None = None) -> OIDCProvider:
        proc, provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"), settings)
        started.append(proc)
        return provider

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    """A provider with the default accounts (alice, bob, carol) and one client."""
    proc, provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"))
    yield provider
    proc.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped after)."""
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """A fresh MariaDB database for this test session (dropped after)."""
    with mariadb_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite database file."""
    return f"sqlite:///{tmp_path / 'eohub.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each of the three databases eohub supports, in turn."""
    name = {"sqlite": "sqlite_url", "postgresql": "postgres_url", "mariadb": "mariadb_url"}
    url: str = request.getfixturevalue(name[request.param])
    return url


@pytest.fixture
def hub_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Hub]]:
    """Start a JupyterHub with configurable-http-proxy; the test gives its config source.

    The drop-ins from jupyterhub_config.d/ load first unless ``load_dropins=False``;
    ``port`` fixes the public port (to register an OIDC redirect URI first).
    """
    started: list[Hub] = []

    def start(
        config: str = "",
        *,
        load_dropins: bool = True,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> Hub:
        hub = start_hub(
            tmp_path_factory.mktemp("hub"), config, load_dropins=load_dropins, port=port, env=env
        )
        started.append(hub)
        return hub

    yield start
    for hub in started:
        hub.process.stop(timeout=20)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium for one test.

    Not shared across tests: sync Playwright keeps an asyncio loop running in the main
    thread while it is open, and tests that call ``asyncio.run`` would then fail.
    """
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context and page (no cookies carried between tests)."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder for this test's screenshots, kept after the run (EOHUB_TEST_ARTIFACTS)."""
    path = artifacts_dir() / request.node.nodeid.replace("/", "_").replace("::", "__")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def fault_proxy_factory() -> Iterator[Callable[..., FaultProxy]]:
    """Put a FaultProxy in front of (host, port); faults can be changed while it runs."""
    proxies: list[FaultProxy] = []

    def start(host: str, port: int, **faults: object) -> FaultProxy:
        proxy = FaultProxy(host, port, **faults).start()  # type: ignore[arg-type]
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
