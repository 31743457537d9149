"""The sampler program against a real accounting service behind a real JupyterHub.

The service runs as drop-in 30 registers it (SQLite in the hub's folder); the sampler
posts with a real hub token holding the ingest and access scopes (the hub's own client
token, which has exactly those), and the samples are read back from the ledger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from eohub.domain.accounting.requests import MAX_SAMPLES
from eohub.domain.accounting.session_record import StorageSample
from eohub.storage.app import StorageSamplerApp
from eohub.storage.poster import Poster
from tests.accounting.service_support import ACCOUNTING_CONFIG, Accounting
from tests.storage.test_walk import du, write
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub, start_hub

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def accounting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounting]:
    hub: Hub = start_hub(tmp_path_factory.mktemp("hub"), ACCOUNTING_CONFIG)
    try:
        service = Accounting(hub)
        service.wait_ready(timeout=60)
        yield service
    finally:
        hub.process.stop(timeout=20)


def ledger(accounting: Accounting, user_prefix: str) -> list[tuple[str, str, int, int]]:
    with sqlite3.connect(accounting.hub.workdir / "eohub-accounting.sqlite") as db:
        rows = db.execute(
            'SELECT user, "group", bytes, file_count FROM storage_samples WHERE user LIKE ? '
            'ORDER BY user, "group", measured_at',
            (user_prefix + "%",),
        ).fetchall()
    return [tuple(row) for row in rows]


def run_sampler(
    accounting: Accounting, config: Path, *args: str, url: str = ""
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "EOHUB_STORAGE_TOKEN": accounting.hub_token,
        "EOHUB_STORAGE_CONFIG": str(config),
    }
    env.pop("JUPYTERHUB_API_TOKEN", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eohub.storage",
            f"--accounting-url={url or accounting.base}",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def attempt_prefix(name: str) -> str:
    """A user-name prefix of this attempt's own: the module's service outlives a failed
    attempt, and a retry must not count that attempt's rows."""
    return f"{name}{secrets.token_hex(3)}-"


def test_one_round_lands_in_the_ledger(accounting: Accounting, tmp_path: Path) -> None:
    p = attempt_prefix("once")
    alice, bob = f"{p}alice", f"{p}bob"
    home = tmp_path / "home"
    write(home / alice / "a.bin", 123_000)
    write(home / alice / "sub" / "b.bin", 4_000)
    write(home / bob / "c.bin", 9_000)
    config = tmp_path / "sampler_config.py"
    config.write_text(
        f"c.FilesystemSampler.roots = [{{'path': {str(home)!r}, 'layout': '{{user}}'}}]\n"
        f"c.Sampler.user_groups = {{{alice!r}: 'climate'}}\n"
    )
    process = run_sampler(accounting, config, "--sampler=filesystem", "--once")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "Storage round: 2 samples" in output
    assert accounting.hub_token not in output
    assert ledger(accounting, p) == [
        (alice, "climate", du(home / alice), du(home / alice, inodes=True)),
        (bob, "", du(home / bob), du(home / bob, inodes=True)),
    ]
    with sqlite3.connect(accounting.hub.workdir / "eohub-accounting.sqlite") as db:
        sources = db.execute(
            "SELECT DISTINCT source, measured_at FROM storage_samples WHERE user LIKE ?",
            (p + "%",),
        ).fetchall()
    assert [source for source, _ in sources] == [str(home)]  # the root, one round's time


def test_json_lines_when_the_hub_asks_for_them(accounting: Accounting, tmp_path: Path) -> None:
    # The hub's json_logging(c) sets EOHUB_LOG_FORMAT=json on its managed services.
    write(tmp_path / "home" / "json-alice" / "a.bin", 5_000)
    config = tmp_path / "sampler_config.py"
    config.write_text(
        f"c.FilesystemSampler.roots = [{{'path': {str(tmp_path / 'home')!r}, "
        "'layout': '{user}'}]\n"
    )
    env = {**os.environ, "EOHUB_LOG_FORMAT": "json"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "environ", env)
        process = run_sampler(accounting, config, "--sampler=filesystem", "--once")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    rounds = [line for line in lines if line.get("event", "").startswith("Storage round")]
    assert rounds, lines
    assert rounds[0]["level"] == "INFO"
    assert accounting.hub_token not in output


def samples(prefix: str, count: int, at: datetime | None = None) -> list[StorageSample]:
    at = at or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return [StorageSample(f"{prefix}{i:05d}", "", 1000 + i, at, i) for i in range(count)]


def test_batches_of_at_most_max_samples(accounting: Accounting) -> None:
    prefix = attempt_prefix("batch")
    many = samples(prefix, MAX_SAMPLES + 1)
    # What is tested is the batching, not the timeout: on a loaded machine a batch of
    # 10,000 can take longer than the default 30 s to store, and the retry would then
    # (rightly) count the stored batch as duplicates.
    poster = Poster(url=accounting.base + "api/storage", token=accounting.hub_token, timeout=300)
    posted = asyncio.run(poster.post(many))
    assert (posted.accepted, posted.duplicates, posted.ok) == (MAX_SAMPLES + 1, 0, True)
    again = asyncio.run(poster.post(many))  # the same samples: stored once
    assert (again.accepted, again.duplicates) == (0, MAX_SAMPLES + 1)
    rows = ledger(accounting, prefix)
    assert len(rows) == MAX_SAMPLES + 1
    assert rows[7] == (f"{prefix}00007", "", 1007, 7)


def test_a_refused_batch_is_logged_and_dropped(
    accounting: Accounting, caplog: pytest.LogCaptureFixture
) -> None:
    future = datetime.now(UTC) + timedelta(hours=2)
    poster = Poster(url=accounting.base + "api/storage", token=accounting.hub_token, retries=3)
    bad, good = samples("future-", 1, future), samples("after-", 1)
    # Two batches of one (MAX_SAMPLES per batch would hold both): the bad one first.
    posted = asyncio.run(_post_one_by_one(poster, [bad, good]))
    assert [p.accepted for p in posted] == [0, 1]
    assert posted[0].dropped == 1
    assert "refused 1 storage samples (HTTP 400)" in caplog.text
    assert "samples[0].measured_at: is in the future" in caplog.text
    assert "trying again" not in caplog.text  # a 4xx is never sent again
    assert ledger(accounting, "future-") == []

    # A token without the ingest scope: refused, and the service says why.
    user_token = accounting.user_token("storage-nobody")
    refused = asyncio.run(Poster(url=poster.url, token=user_token).post(samples("tok-", 1)))
    assert (refused.dropped, refused.ok) == (1, False)
    assert "(HTTP 403)" in caplog.text
    assert user_token not in caplog.text


async def _post_one_by_one(poster: Poster, batches: list[list[StorageSample]]) -> list:  # type: ignore[type-arg]
    return [await poster.post(batch) for batch in batches]


class FlipOnRetry(logging.Handler):
    """Opens the proxy when the poster says it will try again: no race with the clock."""

    def __init__(self, proxy: FaultProxy) -> None:
        super().__init__()
        self.proxy = proxy
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "trying again" in record.getMessage():
            self.retries += 1
            self.proxy.blackhole = False


def test_no_answer_is_retried_until_the_service_answers(
    accounting: Accounting, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    hub = urlsplit(accounting.hub.url)
    proxy = fault_proxy_factory(hub.hostname, hub.port, blackhole=True)
    url = f"http://127.0.0.1:{proxy.port}/services/eohub-accounting/api/storage"
    flip = FlipOnRetry(proxy)
    prefix = attempt_prefix("retry")
    logger = logging.getLogger("eohub.storage.poster")
    logger.addHandler(flip)
    try:
        poster = Poster(url=url, token=accounting.hub_token, timeout=1, backoff=0.1)
        posted = asyncio.run(poster.post(samples(prefix, 3)))
    finally:
        logger.removeHandler(flip)
    assert flip.retries == 1
    assert (posted.accepted, posted.ok) == (3, True)
    assert len(ledger(accounting, prefix)) == 3


def test_nothing_answering_fails_the_batch_after_the_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    poster = Poster(url="http://127.0.0.1:9/api/storage", token="t", retries=2, backoff=0.01)
    posted = asyncio.run(poster.post(samples("none-", 2)))
    assert (posted.failed, posted.ok) == (2, False)
    assert caplog.text.count("trying again") == 2
    assert "2 storage samples not posted" in caplog.text


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 60) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} in the sampler's output:\n{''.join(lines)}")


def test_sigterm_during_a_walk_stops_without_posting(
    accounting: Accounting, tmp_path: Path
) -> None:
    for i in range(200):
        write(tmp_path / "home" / "slow-walker" / f"{i}", 10)
    config = tmp_path / "sampler_config.py"
    # A pause of 0.1 s at every entry: the walk would take 20 s.
    config.write_text(
        f"c.FilesystemSampler.roots = [{{'path': {str(tmp_path / 'home')!r}}}]\n"
        "c.FilesystemSampler.pause_every = 1\n"
        "c.FilesystemSampler.pause_seconds = 0.1\n"
    )
    process = run_sampler(accounting, config, "--sampler=filesystem")
    wait_for_line(process, "posting to")
    time.sleep(1)
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert time.monotonic() - began < 5, output
    assert process.returncode == 0, output
    assert "the round under way is not posted" in output
    assert ledger(accounting, "slow-walker") == []


def test_sigterm_during_a_post_finishes_it_then_exits(
    accounting: Accounting, tmp_path: Path, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    hub = urlsplit(accounting.hub.url)
    proxy = fault_proxy_factory(hub.hostname, hub.port, blackhole=True)
    write(tmp_path / "home" / "stuck-poster" / "f", 10)
    config = tmp_path / "sampler_config.py"
    config.write_text(
        f"c.FilesystemSampler.roots = [{{'path': {str(tmp_path / 'home')!r}}}]\n"
        "c.StorageSamplerApp.post_timeout = 3\n"
    )
    url = f"http://127.0.0.1:{proxy.port}/services/eohub-accounting/"
    process = run_sampler(accounting, config, "--sampler=filesystem", url=url)
    wait_for_line(process, "posting to")
    deadline = time.monotonic() + 20
    while proxy.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.connections == 1
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    # The request under way ran to its timeout; no retry was sent after the signal.
    assert proxy.connections == 1, output
    assert "1 storage samples not posted" in output
    assert "Timeout" in output
    assert "trying again" not in output
    assert process.returncode == 0, output


def test_the_app_reads_its_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EOHUB_ACCOUNTING_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    app = StorageSamplerApp()
    app.initialize(["--sampler=local", "--interval=60", "--once"])
    assert (app.sampler, app.interval, app.once) == ("local", 60, True)
    assert app.storage_url() == "http://127.0.0.1:10101/services/eohub-accounting/api/storage"
    app.accounting_url = "https://hub.example.org/services/eohub-accounting/"
    assert app.storage_url() == "https://hub.example.org/services/eohub-accounting/api/storage"
    assert type(app.make_sampler()).__name__ == "LocalWorkspaceSampler"
    app.sampler = "kubernetes"
    assert type(app.make_sampler()).__name__ == "KubernetesSampler"


def test_the_start_line_never_shows_a_password_of_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    app = StorageSamplerApp()
    app.initialize(["--sampler=filesystem", "--once"])
    app.accounting_url = "https://sampler:s3cret-pw@hub.example.org/services/eohub-accounting/"
    assert asyncio.run(app.run("a-token")) == 1  # no roots: nothing measured
    log = capsys.readouterr().err  # the app's own log handler
    assert "posting to https://hub.example.org/services/eohub-accounting/api/storage" in log
    assert "s3cret-pw" not in log
    assert "a-token" not in log
