"""JSON logs (eohub/json_logs.py, eohub/access_log.py): formatter, access log, hub config.

Tables for the formatter (fields as keys, redaction, values a user controls,
exceptions) and for the URLs the access log writes; the access log itself through a
real Tornado server with the hub's log function; the config that ``json_logging(c)``
and drop-in 40 build, handed to the JupyterHub installed here. The full scenario
against a real hub is tests/hub/test_json_logs_hub.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.metrics import REQUEST_DURATION_SECONDS
from pythonjsonlogger.json import JsonFormatter as LibraryJsonFormatter
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.log import access_log
from tornado.web import Application, HTTPError, RequestHandler, StaticFileHandler
from traitlets.config import Config

from eohub import access_log as hub_access_log
from eohub import json_logs, logs
from eohub.access_log import scrub_query, scrub_url
from eohub.accounting.scopes import Caller, Kind
from eohub.accounting.service.handlers import APIHandler
from eohub.json_logs import JsonFormatter, environment_logging_config, json_logging
from tests.accounting.service.context_support import make_handler
from tests.support.tools import DROPIN_DIR

LIB_LOGGER = "tests.json_logs.library"


@pytest.fixture(autouse=True)
def _warnings_as_before() -> Iterator[None]:
    # JSON mode sends Python's warnings through logging, for the process.
    yield
    logging.captureWarnings(False)


def formatted(record: logging.LogRecord) -> dict[str, Any]:
    """``record`` through the formatter: one line, parsed."""
    line = JsonFormatter("%(message)s").format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def eohub_record(
    event: str, exc_info: bool = False, level: int = logging.INFO, /, **fields: object
) -> logging.LogRecord:
    """The record an eohub module's ``log.info(event, **fields)`` makes."""
    captured: list[logging.LogRecord] = []
    logger = logging.getLogger("eohub.test.json")
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    old_level, logger.level = logger.level, logging.DEBUG
    try:
        field_logger = logs.get_logger("eohub.test.json")
        if exc_info:  # called while an exception is handled
            field_logger.exception(event, **fields)  # noqa: LOG004
        else:
            field_logger.log(level, event, **fields)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    (record,) = captured
    return record


def test_the_formatter_is_python_json_loggers() -> None:
    assert issubclass(JsonFormatter, LibraryJsonFormatter)


@pytest.mark.parametrize(
    ("event", "fields", "keys", "message"),
    [
        # Each field is a top-level key, its type kept.
        (
            "server of {user} started",
            {"user": "alice", "server": "gpu", "group": "climate", "cores": 2.5, "gpus": 0},
            {"user": "alice", "server": "gpu", "group": "climate", "cores": 2.5, "gpus": 0},
            "server of alice started server=gpu group=climate cores=2.5 gpus=0",
        ),
        # Secrets by eohub's names, and by any name that says so: the key stays.
        (
            "login",
            {"password": "hunter2", "token": "t0k", "client_secret": "cs", "db_password": "p"},
            {
                "password": "[redacted]",
                "token": "[redacted]",
                "client_secret": "[redacted]",
                "db_password": "[redacted]",
            },
            'login password="[redacted]" token="[redacted]" client_secret="[redacted]" '
            'db_password="[redacted]"',
        ),
        # A field named like a standard key is kept under a safe name.
        (
            "batch refused",
            {"message": "unknown group", "event": "e-1", "level": 3, "timestamp": "t"},
            {
                "field_message": "unknown group",
                "field_event": "e-1",
                "field_level": 3,
                "field_timestamp": "t",
            },
            'batch refused message="unknown group" event=e-1 level=3 timestamp=t',
        ),
        # Containers stay JSON (secrets inside redacted); anything else is its text.
        (
            "build",
            {"labels": {"a": 1, "api_token": "x"}, "sizes": ("s", "m"), "seen": {"b", "a"}},
            {
                "labels": {"a": 1, "api_token": "[redacted]"},
                "sizes": ["s", "m"],
                "seen": ["a", "b"],
            },
            None,
        ),
        (
            "odd",
            {"ratio": float("nan"), "big": float("inf"), "path": Path("/srv/x"), "none": None},
            {"ratio": "nan", "big": "inf", "path": "/srv/x", "none": None},
            None,
        ),
    ],
)
def test_eohub_fields_are_keys(
    event: str, fields: dict[str, object], keys: dict[str, object], message: str | None
) -> None:
    data = formatted(eohub_record(event, **fields))
    assert {k: data[k] for k in keys} == keys
    assert data["event"] == event
    assert (data["level"], data["logger"]) == ("INFO", "eohub.test.json")
    if message is not None:
        assert data["message"] == message
    # Nothing of the record's own attributes leaks in as a key.
    assert not {"eohub_fields", "eohub_event", "args", "msg", "_eohub_judged"} & set(data)


@pytest.mark.parametrize(
    "name",
    [
        "eve\nINFO admin logged in",
        'eve", "level": "CRITICAL',
        "eve\u2028\u2029\x00\x1b[31m",
        "é\t" + "x" * 5000,
    ],
)
def test_values_a_user_controls_cannot_forge_a_line_or_a_key(name: str) -> None:
    record = eohub_record("login of {user} refused", user=name)
    line = JsonFormatter().format(record)
    assert not {"\n", "\u2028", "\x1b"} & set(line)
    data = json.loads(line)
    assert data["level"] == "INFO"
    assert data["user"] == (
        name if len(name) <= logs.MAX_VALUE else name[: logs.MAX_VALUE] + "..."
    )
    assert set(data) == {
        "timestamp",
        "level",
        "logger",
        "module",
        "line",
        "message",
        "event",
        "user",
    }


def test_the_standard_keys_and_a_utc_timestamp() -> None:
    record = eohub_record("quota refused for {user}", False, logging.WARNING, user="carol")
    data = formatted(record)
    assert list(data)[:7] == ["timestamp", "level", "logger", "module", "line", "message", "event"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data["timestamp"])
    assert data["level"] == "WARNING"
    assert (data["module"], data["line"]) == (record.module, record.lineno)
    assert data["message"] == "quota refused for carol"


def test_an_exception_is_one_string_key() -> None:
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        record = eohub_record("could not record the stop of {user}", True, user="dave")
    data = formatted(record)
    assert data["level"] == "ERROR"
    assert isinstance(data["exc_info"], str)
    assert data["exc_info"].startswith("Traceback (most recent call last):")
    assert data["exc_info"].endswith("RuntimeError: disk on fire")
    assert "exc_info" not in formatted(eohub_record("fine"))


def test_a_library_record_keeps_its_message_and_its_extras() -> None:
    record = logging.LogRecord(
        LIB_LOGGER, logging.WARNING, __file__, 7, "%d%% of %s", (5, "x"), None
    )
    record.request_id = "r-1"
    record.session_token = "s3cr3t"
    record.message = "stale"  # what a text formatter left on the record
    record.color = "\x1b[31m"
    data = formatted(record)
    assert data["message"] == "5% of x"
    assert (data["request_id"], data["session_token"]) == ("r-1", "[redacted]")
    assert not {"color", "event"} & set(data)


# -- URLs in the access log --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("", ""),
        ("token=abc", ""),
        ("offset=10&limit=5", "offset=10&limit=5"),
        ("_xsrf=2|ab|cd&next=%2Fhub%2Fhome", "next=%2Fhub%2Fhome"),
        ("code=c0de&state=st4te&client_id=jupyterhub-user-bob", "client_id=jupyterhub-user-bob"),
        (
            "redirect_uri=%2Fuser%2Fbob%2Foauth_callback&response_type=code",
            "redirect_uri=%2Fuser%2Fbob%2Foauth_callback&response_type=code",
        ),
        ("Token=abc&API_KEY=k&access_token=t&password=p&x=1", "x=1"),
        ("next=%2Fhub%2Fuser%2Fbob%2F%3Ftoken%3Dabc%26a%3D1", "next=/hub/user/bob/%3Fa%3D1"),
        ("flag&&x=", "flag&x="),
        # urlsplit refuses it (ValueError): the value goes, the line stays.
        ("next=http://[::1?x=1&a=2", "next=&a=2"),
        ("next=http%3A%2F%2F%5B%3A%3A1%3Ftoken%3Dabc", "next="),
    ],
)
def test_query_strings_lose_credentials(query: str, kept: str) -> None:
    assert scrub_query(query) == kept


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("/hub/api/users/bob?token=abc", "/hub/api/users/bob"),
        (
            "https://idp.example/authorize?client_id=x&state=s&code_challenge=c&scope=openid",
            "https://idp.example/authorize?client_id=x&scope=openid",
        ),
        ("/user/bob/oauth_callback?code=c0de&state=st4te", "/user/bob/oauth_callback"),
        ("/hub/api/authorizations/token/abc123", "/hub/api/authorizations/token/[secret]"),
        ("/hub/api/authorizations/cookie/name/value", "/hub/api/authorizations/cookie/[secret]"),
        ("https://user:pw@host.example/x?code=1", "https://host.example/x"),
        ("http://[::1?token=abc", "[unparsable URL]"),
        ("GET", "GET"),
    ],
)
def test_urls_lose_credentials(url: str, kept: str) -> None:
    assert scrub_url(url) == kept


# -- the access log through a real Tornado server ----------------------------------------


class Page(RequestHandler):
    users: dict[str, Any] = {  # noqa: RUF012
        "str": "alice",
        "dict": {"name": "svc-report", "kind": "service"},
        "orm": SimpleNamespace(name="bob"),
    }

    def get_current_user(self) -> Any:
        who = self.get_query_argument("as", "")
        if who == "unresolved":
            raise RuntimeError("Must call async get_current_user first!")  # as JupyterHub
        return self.users.get(who)

    def get(self) -> None:
        status = int(self.get_query_argument("status", "200"))
        if status in (301, 302):
            self.redirect("/hub/oauth_callback?code=c0de&state=st4te&x=1", status=status)
            return
        if status == 303:
            self.redirect(self.get_query_argument("to"), status=status)
            return
        if status == 403:  # as JupyterHub refuses a bad token: tornado logs the message
            raise HTTPError(403, "Missing or invalid credentials.")
        if status == 500:
            raise RuntimeError("handler broke")
        self.set_status(status)
        self.finish(None if status == 304 else "ok")


@pytest.fixture
def access_records() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    old_level = access_log.level
    access_log.addHandler(handler)
    access_log.setLevel(logging.DEBUG)
    yield records
    access_log.removeHandler(handler)
    access_log.setLevel(old_level)


async def serve(static: Path, *, xheaders: bool) -> tuple[HTTPServer, str]:
    app = Application(
        [(r"/hub/page", Page), (r"/hub/static/(.*)", StaticFileHandler, {"path": str(static)})],
        log_function=hub_access_log.log_request,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = HTTPServer(app, xheaders=xheaders)
    server.add_sockets([sock])
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


async def fetch(url: str, **kwargs: Any) -> int:
    try:
        response = await AsyncHTTPClient().fetch(url, follow_redirects=False, **kwargs)
    except HTTPClientError as e:
        return e.code
    return int(response.code)


# (request path and query, headers, level, fields expected among the record's)
ACCESS_CASES = [
    (
        "/hub/page?as=str&token=abc&limit=5",
        {},
        logging.INFO,
        {
            "status": 200,
            "method": "GET",
            "path": "/hub/page",
            "user": "alice",
            "query": "as=str&limit=5",
        },
    ),
    ("/hub/page?as=dict", {}, logging.INFO, {"user": "svc-report"}),
    ("/hub/page?as=orm&_xsrf=2|x", {}, logging.INFO, {"user": "bob", "query": "as=orm"}),
    ("/hub/page?as=unresolved", {}, logging.INFO, {"user": ""}),
    ("/hub/page?status=404", {}, logging.WARNING, {"status": 404, "user": ""}),
    (
        "/hub/page?status=302&state=s",
        {},
        logging.INFO,
        {"status": 302, "query": "status=302", "location": "/hub/oauth_callback?x=1"},
    ),
    ("/hub/page?status=304", {}, logging.DEBUG, {"status": 304}),
    ("/hub/static/logo.txt", {}, logging.DEBUG, {"status": 200, "path": "/hub/static/logo.txt"}),
    ("/hub/static/missing.txt", {}, logging.WARNING, {"status": 404}),
    (
        "/hub/page?status=500",
        {"Cookie": "jupyterhub-hub-login=c00kie", "Authorization": "token t0k", "X-Mine": "v"},
        logging.ERROR,
        {"status": 500},
    ),
]


@pytest.mark.parametrize(("path", "headers", "level", "fields"), ACCESS_CASES)
async def test_the_access_log_writes_fields_at_jupyterhubs_levels(
    tmp_path: Path,
    access_records: list[logging.LogRecord],
    path: str,
    headers: dict[str, str],
    level: int,
    fields: dict[str, object],
) -> None:
    (tmp_path / "logo.txt").write_text("logo")
    server, base = await serve(tmp_path, xheaders=False)
    try:
        await fetch(base + path, headers=headers)
    finally:
        server.stop()
    (record,) = access_records
    data = formatted(record)
    assert record.levelno == level
    assert {k: data[k] for k in fields} == fields
    assert data["remote_addr"] == "127.0.0.1"
    assert isinstance(data["duration_ms"], float)
    assert data["event"] == hub_access_log.ACCESS_EVENT
    assert data["message"].startswith(f"{data['status']} GET {data['path']} (")
    for secret in ("abc", "c0de", "st4te", "c00kie", "t0k", "2|x"):
        assert secret not in json.dumps(data)
    if data["status"] == 500:
        assert data["request_headers"]["Cookie"] == "[redacted]"
        assert data["request_headers"]["Authorization"] == "[redacted]"
        assert data["request_headers"]["X-Mine"] == "v"


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/hub/page?as=str&next=http://[::1?x=1", {"status": 200, "query": "as=str&next="}),
        (
            "/hub/page?status=303&to=http://[::1?token=abc",
            {"status": 303, "query": "status=303&to="},
        ),
        ("/hub/page?status=303&to=http://u:pw@h.example/?code=1", {"status": 303}),
    ],
)
async def test_a_url_urlsplit_refuses_costs_its_value_not_the_line(
    tmp_path: Path,
    access_records: list[logging.LogRecord],
    caplog: pytest.LogCaptureFixture,
    path: str,
    fields: dict[str, object],
) -> None:
    # urlsplit raises ValueError ("Invalid IPv6 URL"); inside tornado's finish() that
    # would lose the line and the metric, and log the whole URI with a traceback.
    labels = {"method": "GET", "handler": f"{__name__}.Page", "code": str(fields["status"])}
    before = REQUEST_DURATION_SECONDS.labels(**labels)._sum.get()  # type: ignore[attr-defined]
    server, base = await serve(tmp_path, xheaders=False)
    try:
        assert await fetch(base + path) == fields["status"]
    finally:
        server.stop()
    (record,) = access_records
    data = formatted(record)
    assert {k: data[k] for k in fields} == fields
    assert data.get("location", "http://h.example/") == "http://h.example/"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    after = REQUEST_DURATION_SECONDS.labels(**labels)._sum.get()  # type: ignore[attr-defined]
    assert after > before
    for secret in ("abc", ":pw@", "code=1"):
        assert secret not in json.dumps(data)


@pytest.fixture
def tornado_lines() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    """Tornado's own lines as text, through the secrets filter eohub.logs.attach puts on
    a hub's handlers (tornado logs to the hub's log: JupyterHub's init_logging)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s %(name)s] %(message)s"))
    tornado_log = logging.getLogger("tornado")
    saved = (tornado_log.level, tornado_log.propagate)
    tornado_log.addHandler(handler)
    tornado_log.setLevel(logging.INFO)
    tornado_log.propagate = False
    hub_access_log.hide_host_secrets(tornado_log)
    yield stream, handler
    tornado_log.removeHandler(handler)
    tornado_log.level, tornado_log.propagate = saved


@pytest.mark.parametrize("formatter", [logging.Formatter, JsonFormatter])
async def test_tornados_error_lines_lose_the_uris_credentials(
    tmp_path: Path,
    tornado_lines: tuple[io.StringIO, logging.Handler],
    formatter: type[logging.Formatter],
) -> None:
    stream, handler = tornado_lines
    handler.setFormatter(formatter())
    server, base = await serve(tmp_path, xheaders=False)
    try:
        assert await fetch(base + "/hub/page?status=403&token=T0KEN-A") == 403
        assert await fetch(base + "/hub/page?status=500&state=ST4TE-B&x=1") == 500
    finally:
        server.stop()
    text = stream.getvalue()
    lines = text.splitlines()
    if formatter is JsonFormatter:
        lines = [json.loads(line)["message"] for line in lines]
    assert "403 GET /hub/page?status=403 (127.0.0.1): Missing or invalid credentials." in lines
    assert "Uncaught exception GET /hub/page?status=500&x=1 (127.0.0.1)" in "\n".join(lines)
    assert "uri='/hub/page?status=500&x=1'" in "\n".join(lines)
    assert "T0KEN-A" not in text
    assert "ST4TE-B" not in text


@pytest.mark.parametrize(("xheaders", "address"), [(True, "203.0.113.7"), (False, "127.0.0.1")])
async def test_the_remote_address_is_the_one_tornado_trusts(
    tmp_path: Path, access_records: list[logging.LogRecord], xheaders: bool, address: str
) -> None:
    # JupyterHub's server reads X-Forwarded-For (xheaders), as its own access log shows.
    server, base = await serve(tmp_path, xheaders=xheaders)
    try:
        await fetch(base + "/hub/page", headers={"X-Forwarded-For": "203.0.113.7"})
    finally:
        server.stop()
    assert formatted(access_records[0])["remote_addr"] == address


async def test_requests_are_still_counted_in_the_hubs_metrics(
    tmp_path: Path, access_records: list[logging.LogRecord]
) -> None:
    labels = {"method": "GET", "handler": f"{__name__}.Page", "code": "200"}
    before = REQUEST_DURATION_SECONDS.labels(**labels)._sum.get()  # type: ignore[attr-defined]
    server, base = await serve(tmp_path, xheaders=False)
    try:
        await fetch(base + "/hub/page")
    finally:
        server.stop()
    after = REQUEST_DURATION_SECONDS.labels(**labels)._sum.get()  # type: ignore[attr-defined]
    assert after > before


@pytest.mark.parametrize(
    ("status", "milliseconds", "level"),
    [
        (200, 5.0, logging.INFO),
        (304, 5.0, logging.DEBUG),
        (304, 1500.0, logging.INFO),  # slow: at least INFO, as JupyterHub does
        (403, 5.0, logging.WARNING),
        (502, 5.0, logging.ERROR),
    ],
)
def test_access_levels(status: int, milliseconds: float, level: int) -> None:
    assert hub_access_log.access_level(object(), status, milliseconds) == level


# -- json_logging(c) and drop-in 40 -------------------------------------------------------


def resolved(section: Config, name: str, empty: Any) -> Any:
    value = section.get(name, empty)
    return value.get_value(empty) if hasattr(value, "get_value") else value


def test_json_logging_keeps_the_sites_settings() -> None:
    c = Config()
    c.Application.logging_config = {
        "handlers": {"file": {"class": "logging.FileHandler", "filename": "/tmp/hub.log"}},
        "loggers": {"JupyterHub": {"handlers": ["console", "file"]}},
    }
    c.JupyterHub.logging_config = {"loggers": {"eohub.adapters": {"level": "DEBUG"}}}
    c.JupyterHub.tornado_settings = {
        "headers": {"X-Site": "1"},
        "cookie_options": {"secure": True},
    }
    c.JupyterHub.services = [
        {"name": "eohub-accounting", "command": ["x"], "environment": {"KEEP": "1"}},
        {"name": "external", "url": "http://127.0.0.1:1", "api_token": "t"},
        {"name": "sites-own", "command": ["report"]},
        {"name": "asked-text", "command": ["eohub-accounting"], "environment": TEXT},
    ]
    c.JupyterHub.services.append({"name": "appended", "command": ["python", "-m", "eohub.x"]})
    json_logging(c, level="debug")
    # Deferred: traitlets puts c.Application's value below it as the hub loads.
    config = c.JupyterHub.logging_config.merge_into(c.Application.logging_config).get_value({})
    assert config["formatters"]["console"]["class"] == "eohub.json_logs.JsonFormatter"
    assert config["root"] == {"level": "WARNING", "handlers": ["console"]}
    assert config["handlers"]["file"]["filename"] == "/tmp/hub.log"
    assert config["loggers"]["JupyterHub"]["handlers"] == ["console", "file"]
    assert config["loggers"]["eohub.adapters"] == {"level": "DEBUG"}
    assert c.JupyterHub.log_level == "DEBUG"
    settings = c.JupyterHub.tornado_settings
    assert settings["log_function"] is hub_access_log.log_request
    kept = (settings["headers"], settings["cookie_options"])
    assert kept == ({"X-Site": "1"}, {"secure": True})
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["eohub-accounting"]["environment"] == {"KEEP": "1", "EOHUB_LOG_FORMAT": "json"}
    assert services["appended"]["environment"] == {"EOHUB_LOG_FORMAT": "json"}
    assert services["asked-text"]["environment"] == TEXT
    assert "environment" not in services["external"]
    assert "environment" not in services["sites-own"]


TEXT = {"EOHUB_LOG_FORMAT": "text"}


def test_json_logging_with_appended_services() -> None:
    c = Config()
    c.JupyterHub.services.append({"name": "late", "command": ["/opt/bin/eohub-storage-sampler"]})
    json_logging(c)
    (service,) = resolved(c.JupyterHub, "services", [])
    assert service["environment"] == {"EOHUB_LOG_FORMAT": "json"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("json", True), (" JSON ", True), ("text", False), ("", False), ("yaml", False)],
)
def test_eohub_services_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("EOHUB_LOG_FORMAT", value)
    config = environment_logging_config()
    assert (config == json_logs.json_logging_config()) is expected
    assert expected or config == {}


@pytest.fixture
def dropin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Drop-in 30 writes its hub token file in the working directory unless given one.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EOHUB_ACCOUNTING_HUB_TOKEN", "dropin-test-token")
    return tmp_path


def load_dropins() -> Config:
    """Every drop-in with one ``c``, as the Zero to JupyterHub chart runs them."""
    config = Config()
    namespace: dict[str, Any] = {"c": config, "get_config": lambda: config}
    for path in sorted(DROPIN_DIR.glob("*.py")):
        exec(compile(path.read_text(), path.name, "exec"), namespace)  # noqa: S102
    return config


def test_dropin_40_does_nothing_unless_asked(
    dropin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EOHUB_LOG_FORMAT", raising=False)
    config = load_dropins()
    assert "logging_config" not in config.JupyterHub
    assert "log_function" not in resolved(config.JupyterHub, "tornado_settings", {})
    monkeypatch.setenv("EOHUB_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match=r"EOHUB_LOG_FORMAT='yaml': use one of text, json"):
        load_dropins()


@pytest.fixture
def saved_logging() -> Iterator[None]:
    """The root and JupyterHub loggers as they were: a hub's config replaces handlers,
    and drop-in 00 puts a filter on the hub's logger."""
    root, hub_log = logging.getLogger(), logging.getLogger("JupyterHub")
    saved = [(x, list(x.handlers), list(x.filters), x.level) for x in (root, hub_log)]
    yield
    for logger, handlers, filters, level in saved:
        logger.handlers, logger.filters, logger.level = handlers, filters, level


@pytest.fixture
def running_hub(saved_logging: None) -> Iterator[JupyterHub]:
    """The hub application as ``jupyterhub`` makes it (the instance), not started."""
    app = JupyterHub.instance()
    yield app
    JupyterHub.clear_instance()


def test_the_hub_logs_json_with_dropin_40_under_load_subconfig(
    dropin_dir: Path, monkeypatch: pytest.MonkeyPatch, running_hub: JupyterHub
) -> None:
    # Each file in its own config: drop-in 40 sees neither the accounting service of
    # 30 nor the tornado_settings a later file assigns, which would replace its own.
    monkeypatch.setenv("EOHUB_LOG_FORMAT", "json")
    dropins = sorted(str(p) for p in DROPIN_DIR.glob("*.py"))
    (dropin_dir / "99-site.py").write_text(
        'c.JupyterHub.tornado_settings = {"headers": {"X-Site": "1"}}\n'
    )
    (dropin_dir / "jupyterhub_config.py").write_text(
        textwrap.dedent(f"""\
            for path in {[*dropins, str(dropin_dir / "99-site.py")]!r}:
                load_subconfig(path)  # noqa: F821
            """)
    )
    app = running_hub
    app.load_config_file("jupyterhub_config.py")
    (console,) = app.log.handlers
    assert isinstance(console.formatter, JsonFormatter)
    assert app.tornado_settings == {
        "headers": {"X-Site": "1"},
        "log_function": hub_access_log.log_request,
    }
    (accounting,) = [s for s in app.services if s["name"] == "eohub-accounting"]
    assert accounting["environment"]["EOHUB_LOG_FORMAT"] == "json"
    record = app.log.makeRecord("JupyterHub", logging.INFO, __file__, 1, "hub %s", ("up",), None)
    data = json.loads(console.format(record))
    assert (data["logger"], data["message"]) == ("JupyterHub", "hub up")


def site_file_handler(path: Path) -> dict[str, Any]:
    """A site's logging_config that adds a log file (traitlets' own example)."""
    return {
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path)}},
        "loggers": {"JupyterHub": {"handlers": ["console", "file"]}},
    }


def dropin_lines(shared: bool) -> str:
    """Config source that runs every drop-in: in this file's ``c`` (the Zero to
    JupyterHub chart) or each with ``load_subconfig``."""
    dropins = sorted(str(p) for p in DROPIN_DIR.glob("*.py"))
    if shared:
        return f"for path in {dropins!r}:\n    exec(open(path).read())\n"
    return f"for path in {dropins!r}:\n    load_subconfig(path)  # noqa: F821\n"


def load_hub(app: JupyterHub, directory: Path, source: str) -> dict[str, Any]:
    (directory / "jupyterhub_config.py").write_text("c = get_config()  # noqa: F821\n" + source)
    app.load_config_file("jupyterhub_config.py")
    config: dict[str, Any] = app.logging_config
    (console,) = [h for h in app.log.handlers if type(h) is logging.StreamHandler]
    assert isinstance(console.formatter, JsonFormatter)
    return config


@pytest.mark.parametrize(
    ("case", "shared"),
    [
        ("jupyterhub-before", False),  # (a) replaced whole by the drop-in's own before
        ("application-before", False),  # (b) shadowed by c.JupyterHub's value
        ("application-after", False),
        ("application-after", True),  # (b) Z2JH: hub.extraConfig runs after the drop-ins
        ("jupyterhub-before", True),
    ],
)
def test_a_sites_log_file_is_kept(
    dropin_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    running_hub: JupyterHub,
    case: str,
    shared: bool,
) -> None:
    monkeypatch.setenv("EOHUB_LOG_FORMAT", "json")
    site = site_file_handler(dropin_dir / "hub.log")
    section = "JupyterHub" if case.startswith("jupyterhub") else "Application"
    setting = f"c.{section}.logging_config = {site!r}\n"
    before = case.endswith("before")
    source = (setting if before else "") + dropin_lines(shared) + ("" if before else setting)
    config = load_hub(running_hub, dropin_dir, source)
    assert config["handlers"]["file"]["filename"] == str(dropin_dir / "hub.log")
    assert config["loggers"]["JupyterHub"]["handlers"] == ["console", "file"]
    assert config["formatters"]["console"]["class"] == "eohub.json_logs.JsonFormatter"
    (file_handler,) = [h for h in running_hub.log.handlers if isinstance(h, logging.FileHandler)]
    running_hub.log.warning("to the file too")
    file_handler.close()
    assert "to the file too" in (dropin_dir / "hub.log").read_text()


@pytest.mark.parametrize("shared", [True, False])
def test_a_sites_levels_handlers_and_filters_are_kept(
    dropin_dir: Path, monkeypatch: pytest.MonkeyPatch, running_hub: JupyterHub, shared: bool
) -> None:
    # (c) The site's root logger and console filters: JSON adds to them, changes none.
    monkeypatch.setenv("EOHUB_LOG_FORMAT", "json")
    site = {
        **site_file_handler(dropin_dir / "hub.log"),
        "filters": {"mine": {"()": "logging.Filter", "name": ""}},
        "root": {"level": "INFO", "handlers": ["file"]},
    }
    site["handlers"]["console"] = {"filters": ["mine"]}
    source = f"c.JupyterHub.logging_config = {site!r}\n" + dropin_lines(shared)
    config = load_hub(running_hub, dropin_dir, source)
    assert config["root"] == {"level": "INFO", "handlers": ["file", "console"]}
    assert config["handlers"]["console"]["filters"] == ["mine", "eohub_host_secrets"]
    assert logging.getLogger().level == logging.INFO
    (console,) = [h for h in running_hub.log.handlers if type(h) is logging.StreamHandler]
    assert [type(f).__name__ for f in console.filters] == ["Filter", "HostSecrets"]
    for handler in running_hub.log.handlers:
        handler.close()


def test_a_sites_own_choices_stand(running_hub: JupyterHub, saved_logging: None) -> None:
    c = Config()
    json_logging(c)
    running_hub.update_config(c)
    site = Config()
    site.JupyterHub.tornado_settings = {"log_function": print}
    site.JupyterHub.logging_config = {"formatters": {"console": {"class": "logging.Formatter"}}}
    running_hub.update_config(site)
    assert running_hub.tornado_settings == {"log_function": print}
    (console,) = running_hub.log.handlers
    assert type(console.formatter) is logging.Formatter


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_the_accounting_writer_child_logs_like_the_service(log_format: str) -> None:
    # The writer is a child process started by the service: it reads the same variable.
    code = (
        "import logging\n"
        "from eohub.adapters.accounting_db.writer_process import _log_like_the_service\n"
        "_log_like_the_service()\n"
        "logging.getLogger('eohub.writer').error('write failed', extra={'eohub_fields': "
        "{'user': 'alice', 'password': 'hunter2'}})\n"
    )
    env = {**os.environ, "EOHUB_LOG_FORMAT": log_format}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    if log_format == "text":
        assert done.stderr.startswith("[AccountingService writer ERROR] write failed")
        return
    line = json.loads(done.stderr)
    assert (line["level"], line["message"], line["user"]) == ("ERROR", "write failed", "alice")
    assert "hunter2" not in done.stderr


# -- the accounting service ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "caller", "level"),
    [
        (200, Caller("alice", Kind.USER, frozenset()), logging.INFO),
        (403, None, logging.WARNING),
        (503, Caller("eohub-accounting-hub", Kind.SERVICE, frozenset()), logging.ERROR),
    ],
)
def test_the_services_access_line_has_the_hubs_keys(
    caplog: pytest.LogCaptureFixture, status: int, caller: Caller | None, level: int
) -> None:
    caplog.set_level(logging.DEBUG, "eohub.access_log")
    handler = make_handler(APIHandler, "/services/eohub-accounting/api/usage?token=s3cr3t&x=1")
    handler.set_status(status)
    handler.caller = caller
    handler.request.remote_ip = "127.0.0.1"  # no connection here: the proxy's address
    hub_access_log.service_log_request(handler)
    (record,) = [r for r in caplog.records if r.name == "eohub.access_log"]
    data = formatted(record)
    assert record.levelno == level
    assert data["event"] == hub_access_log.ACCESS_EVENT
    expected = {
        "status": status,
        "method": "GET",
        "path": "/services/eohub-accounting/api/usage",
        "query": "x=1",
        "user": caller.name if caller else "",
        "remote_addr": "127.0.0.1",
    }
    assert {k: data[k] for k in expected} == expected
    assert isinstance(data["duration_ms"], float)
    assert data["duration_ms"] == round(data["duration_ms"], 2)
    assert "s3cr3t" not in json.dumps(data)


def run_accounting(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "EOHUB_LOG_FORMAT": "json", **env}
    environment.pop("EOHUB_ACCOUNTING_DB_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "eohub.accounting", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_service_with_its_database_down_logs_one_json_line_and_exits_1(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql+psycopg://eohub:db-pw-9f3a@127.0.0.1:{port}/eohub"
    done = run_accounting(tmp_path, f"--db-url={url}")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    (line,) = [json.loads(text) for text in lines]  # JSON only, no bare traceback
    assert (line["level"], line["event"]) == ("ERROR", "{program} stopped: {error}")
    assert "Connection refused" in line["error"]
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert "db-pw-9f3a" not in done.stderr


def test_the_export_subcommand_follows_the_log_format(tmp_path: Path) -> None:
    done = run_accounting(tmp_path, "export", EOHUB_ACCOUNTING_CONFIG=str(tmp_path / "x.py"))
    assert done.returncode == 1
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert (line["level"], line["path"]) == ("CRITICAL", str(tmp_path / "x.py"))
