"""The logging convention (eohub/logs.py): how a line reads, and that every module keeps it."""

from __future__ import annotations

import ast
import io
import logging
import string
from pathlib import Path

import pytest

import eohub
from eohub import logs

PACKAGE = Path(eohub.__file__).parent
LEVELS = {"debug", "info", "warning", "error", "exception", "log", "critical"}


@pytest.mark.parametrize(
    ("event", "fields", "line"),
    [
        ("server started", {}, "server started"),
        ("server of {user} started", {"user": "alice"}, "server of alice started"),
        (
            "build finished",
            {"build": "b-1", "image": "r/x:1"},
            "build finished build=b-1 image=r/x:1",
        ),
        ("quota", {"group": "climate lab"}, 'quota group="climate lab"'),
        (
            "n",
            {"cores": 2.5, "gpus": 0, "ok": True, "none": None},
            "n cores=2.5 gpus=0 ok=True none=None",
        ),
        # A name in the text shows the value as is, with control characters escaped,
        # so a user name cannot start a forged line.
        ("login of {user} refused", {"user": "eve\nINFO ok"}, "login of eve\\nINFO ok refused"),
        ("empty", {"user": ""}, 'empty user=""'),
        ("login of {user!r}", {"user": "bob"}, "login of 'bob'"),
        ("refused", {"user": "eve\r\nx"}, 'refused user="eve\\r\\nx"'),
        (
            "secret",
            {"password": "hunter2", "token": "abc"},
            'secret password="[redacted]" token="[redacted]"',
        ),
        ("named secret {token}", {"token": "abc"}, "named secret [redacted]"),
        # Any name that contains a secret's name, as in the JSON lines.
        (
            "bind",
            {"client_secret": "s3", "Bind_Password": "pw", "api-key": "k"},
            'bind client_secret="[redacted]" Bind_Password="[redacted]" api-key="[redacted]"',
        ),
        ("missing {field}", {}, "missing {field}"),
        ("percent", {"v": "100%"}, "percent v=100%"),
    ],
)
def test_a_line_has_its_text_then_the_other_fields(
    event: str, fields: dict[str, object], line: str
) -> None:
    assert logs.render(event, fields) == line


def test_long_values_are_shortened() -> None:
    line = logs.render("big", {"v": "x" * 10_000})
    assert len(line) < logs.MAX_VALUE + 20
    assert line.endswith('..."') or line.endswith("...")


def test_records_keep_the_fields_for_a_structured_formatter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logs.get_logger("eohub.test.logs")
    with caplog.at_level(logging.INFO, logger="eohub.test.logs"):
        log.info("quota refused for {user}", user="carol", group="climate", password="p")
    (record,) = caplog.records
    assert record.getMessage() == 'quota refused for carol group=climate password="[redacted]"'
    assert logs.fields_of(record) == {
        "user": "carol",
        "group": "climate",
        "password": "[redacted]",
    }
    assert getattr(record, logs.EVENT_ATTR) == "quota refused for {user}"
    assert record.funcName == "test_records_keep_the_fields_for_a_structured_formatter"
    assert record.exc_info is None


def test_exception_logs_the_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logs.get_logger("eohub.test.logs")
    with caplog.at_level(logging.INFO, logger="eohub.test.logs"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("could not record the stop of {user}", user="dave")
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert caplog.text.count("Traceback") == 1


def test_a_disabled_level_costs_no_rendering(caplog: pytest.LogCaptureFixture) -> None:
    class Loud:
        def __str__(self) -> str:
            raise AssertionError("rendered although DEBUG is off")

    with caplog.at_level(logging.INFO, logger="eohub.test.logs"):
        logs.get_logger("eohub.test.logs").debug("quiet", value=Loud())
    assert caplog.records == []


def test_a_line_before_attaching_does_not_keep_info_off() -> None:
    # Python caches, per logger, whether a level is enabled; attaching must reset it.
    app_log = logging.getLogger("eohub-test-early-application")
    app_log.propagate = False
    app_log.setLevel(logging.INFO)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    app_log.addHandler(handler)
    tree = logging.getLogger("eohub")
    before = (tree.parent, getattr(tree, "_eohub_attached", False))
    early = logs.get_logger("eohub.test.early")
    try:
        tree._eohub_attached = False  # type: ignore[attr-defined]
        logging.getLogger().setLevel(logging.WARNING)
        early.info("before the hub's logger is known")  # caches INFO as off
        logs.attach(app_log)
        early.info("after attaching")
        assert [r.getMessage() for r in seen] == ["after attaching"]
    finally:
        tree.parent, tree._eohub_attached = before  # type: ignore[attr-defined]
        tree.setLevel(tree.level)
        app_log.removeHandler(handler)


def test_loggers_live_under_eohub() -> None:
    assert logs.get_logger("eohub.auth.ldap").name == "eohub.auth.ldap"
    with pytest.raises(ValueError, match=r"under 'eohub\.'"):
        logs.get_logger("jupyterhub")


def test_attach_sends_the_eohub_tree_to_the_applications_handlers() -> None:
    app_log = logging.getLogger("eohub-test-application")
    app_log.propagate = False
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    app_log.addHandler(handler)
    tree = logging.getLogger("eohub")
    before = (tree.parent, getattr(tree, "_eohub_attached", False))
    try:
        tree._eohub_attached = False  # type: ignore[attr-defined]
        logs.attach(app_log)
        logs.attach(logging.getLogger("another-application"))  # the first one wins
        app_log.setLevel(logging.INFO)
        logs.get_logger("eohub.test.attach").info("reaches the hub's log")
        assert [r.getMessage() for r in seen] == ["reaches the hub's log"]
    finally:
        tree.parent, tree._eohub_attached = before  # type: ignore[attr-defined]
        app_log.removeHandler(handler)


def log_request(app_log: logging.Logger) -> None:
    """JupyterHub's text access line (jupyterhub/log.py), formatted before logging."""
    app_log.info(
        "302 GET /hub/user/bob/lab?token=[secret] -> "
        "/hub/login?next=%2Fhub%2Fuser%2Fbob%2Flab%3Ftoken%3DT0KEN-2 (@127.0.0.1) 0.66ms"
    )


def test_attach_hides_the_hosts_secrets_in_text_mode_too() -> None:
    # Text lines, as a hub without JSON logs writes them: tornado's line about a
    # refused request shows its URI, JupyterHub's xsrf line the session id.
    app_log = logging.getLogger("eohub-test-text-application")
    app_log.propagate = False
    stream = io.StringIO()
    console, extra = logging.StreamHandler(stream), logging.StreamHandler(stream)
    for handler in (console, extra):
        handler.setFormatter(logging.Formatter("[%(levelname)s %(name)s] %(message)s"))
        app_log.addHandler(handler)
    child = logging.getLogger("eohub-test-text-application.tornado")
    # JupyterHub hooks oauthlib's loggers up to its own (init_logging).
    oauthlib = logging.getLogger("oauthlib")
    saved = (oauthlib.parent, app_log.level)
    try:
        oauthlib.parent = app_log
        app_log.setLevel(logging.DEBUG)
        logs.attach(app_log)
        logs.attach(app_log)  # once per handler, however many plugins call it
        assert [type(f).__name__ for f in console.filters].count("HostSecrets") == 1
        assert [type(f).__name__ for f in extra.filters].count("HostSecrets") == 1
        child.warning(
            "%d %s: %s", 403, "GET /hub/api/users/x?token=T0KEN-1&a=1 (127.0.0.1)", "Denied."
        )
        app_log.info("Setting new xsrf cookie for %r %r", "S3SSION-ID", {"path": "/"})
        log_request(app_log)
        logging.getLogger("oauthlib.oauth2.rfc6749").debug("code C0DE-1 state ST4TE-1")
        app_log.debug("still written")
    finally:
        for handler in (console, extra):
            app_log.removeHandler(handler)
        oauthlib.parent, app_log.level = saved
    text = stream.getvalue()
    assert "403 GET /hub/api/users/x?a=1 (127.0.0.1): Denied." in text
    assert "Setting new xsrf cookie for '[redacted]'" in text
    assert "302 GET /hub/user/bob/lab -> /hub/login?next=/hub/user/bob/lab (@127" in text
    assert text.count("still written") == 2
    for secret in ("T0KEN-1", "T0KEN-2", "S3SSION-ID", "C0DE-1", "ST4TE-1"):
        assert secret not in text


class _Failing:
    """A traitlets-like application whose start fails, as with its database down."""

    def __init__(self, name: str) -> None:
        self.log = logging.getLogger(name)
        self.log.propagate = False

    def initialize(self, argv: list[str] | None) -> None:
        pass

    def start(self) -> None:
        raise ConnectionRefusedError("database at 127.0.0.1:5432 refused")


def test_run_logged_logs_a_failure_through_the_applications_handlers() -> None:
    app = _Failing("eohub-test-run-logged")
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    app.log.addHandler(handler)
    tree = logging.getLogger("eohub")
    before = (tree.parent, getattr(tree, "_eohub_attached", False))
    try:
        tree._eohub_attached = False  # type: ignore[attr-defined]
        with pytest.raises(SystemExit) as stopped:
            logs.run_logged(app, [], "eohub-test")
    finally:
        tree.parent, tree._eohub_attached = before  # type: ignore[attr-defined]
        app.log.removeHandler(handler)
    assert stopped.value.code == 1
    (record,) = seen
    assert record.getMessage() == "eohub-test stopped: database at 127.0.0.1:5432 refused"
    assert record.exc_info is not None
    assert record.exc_info[0] is ConnectionRefusedError


# -- every module keeps the convention ---------------------------------------------------


def _log_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LEVELS
    ]


def convention_problems(source: str) -> list[str]:
    """What in ``source`` breaks the logging convention, one line per problem."""
    tree = ast.parse(source)
    problems = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "getLogger"
            and isinstance(node.value, ast.Name)
            and node.value.id == "logging"
        ):
            problems.append(f"line {node.lineno}: logging.getLogger; use eohub.logs.get_logger")
    for call in _log_calls(tree):
        receiver = call.func.value  # type: ignore[attr-defined]
        where = f"line {call.lineno}"
        if isinstance(receiver, ast.Attribute) and receiver.attr == "log":
            problems.append(f"{where}: logs through .log; use the module's logger")
            continue
        if not (isinstance(receiver, ast.Name) and receiver.id == "log"):
            continue
        args = call.args[1:] if call.func.attr == "log" else call.args  # type: ignore[attr-defined]
        if any(k.arg == "extra" for k in call.keywords):
            problems.append(f"{where}: extra= fields; pass them as keywords")
        if len(args) != 1 or not isinstance(args[0], ast.Constant | ast.JoinedStr):
            problems.append(f"{where}: one constant message, then keyword fields")
            continue
        if isinstance(args[0], ast.JoinedStr):
            problems.append(f"{where}: an f-string message; pass the values as fields")
            continue
        named = {n for _, n, _, _ in string.Formatter().parse(args[0].value) if n}
        given = {k.arg for k in call.keywords}
        if None not in given and named - given:
            problems.append(f"{where}: names {sorted(named - given)} without the fields")
    return problems


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import logging\nlog = logging.getLogger(__name__)\n", "logging.getLogger"),
        ("self.log.info('x %s', y)\n", "logs through .log"),
        ("log.info('x %s', y)\n", "one constant message"),
        ("log.info(f'x {y}')\n", "f-string"),
        ("log.info('x', extra={'a': 1})\n", "extra="),
        ("log.warning('login of {user} refused')\n", "names ['user']"),
    ],
)
def test_the_convention_check_catches_each_old_style(source: str, problem: str) -> None:
    (found,) = convention_problems(source)
    assert problem in found


@pytest.mark.parametrize(
    "path",
    sorted(
        p for p in PACKAGE.rglob("*.py") if p.name != "logs.py" and "migrations" not in p.parts
    ),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_every_module_logs_the_one_way(path: Path) -> None:
    assert convention_problems(path.read_text()) == []


# -- expected refusals in the host application's log -----------------------------------


class _Refused(Exception):
    eohub_expected_refusal = True


def _quiet_log(name: str) -> tuple[logging.Logger, list[str]]:
    """A logger whose handler formats what it gets (tracebacks too), filtered as a hub's."""
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger.handlers = [handler]
    logs.quiet_expected_refusals(logger)
    logs.quiet_expected_refusals(logger)  # once is enough: no second filter
    assert len(handler.filters) == 1
    return logger, lines


def test_an_expected_refusal_is_one_warning_line_without_traceback() -> None:
    logger, lines = _quiet_log("eohub-test-refusals")
    try:
        raise _Refused("over quota")
    except _Refused:
        # JupyterHub's own line, as its spawner logs it: it only repeats the next one.
        logger.exception("Exception applying user_options for %s", "dave:second")
        logger.error("Error starting dave's server: over quota")  # while it is handled
    assert lines == ["WARNING Error starting dave's server: over quota"]


def test_only_the_repeated_line_about_an_expected_refusal_is_dropped() -> None:
    logger, lines = _quiet_log("eohub-test-repeats")
    second: list[str] = []
    other = logging.Handler()
    other.emit = lambda record: second.append(record.getMessage())  # type: ignore[method-assign]
    logs.quiet_expected_refusals(logger)
    logger.addHandler(other)
    logs.quiet_expected_refusals(logger)
    try:
        raise RuntimeError("the hook broke")
    except RuntimeError:
        logger.exception("Exception applying user_options for %s", "erin")
    try:
        raise _Refused("over quota")
    except _Refused:
        logger.exception("Exception applying user_options for %s", "dave")
        logger.exception("Something else about %s", "dave")
    assert lines[0].startswith("ERROR Exception applying user_options for erin\nTraceback")
    assert lines[1:] == ["WARNING Something else about dave"]
    # The other handler follows the first one's verdict.
    assert second == ["Exception applying user_options for erin", "Something else about dave"]


def test_an_unexpected_error_keeps_one_traceback() -> None:
    logger, lines = _quiet_log("eohub-test-faults")
    try:
        raise RuntimeError("disk on fire")
    except RuntimeError:
        logger.exception("Unhandled error starting erin's server")
        logger.exception("Uncaught exception POST /hub/api/users/erin/server")
    assert lines[0].startswith("ERROR Unhandled error starting erin's server\nTraceback")
    assert "RuntimeError: disk on fire" in lines[0]
    assert lines[1] == "ERROR Uncaught exception POST /hub/api/users/erin/server"


def test_an_empty_traceback_is_dropped() -> None:
    logger, lines = _quiet_log("eohub-test-empty")
    # Outside an except, as JupyterHub 5 does.
    logger.exception("Error starting server dave")  # noqa: LOG004
    assert lines == ["ERROR Error starting server dave"]


def test_the_spawners_errors_are_expected_refusals() -> None:
    from eohub.domain.launch.options import OptionsError
    from eohub.spawner.errors import ExpectedRefusal, options_error, user_error

    assert logs.is_expected_refusal(user_error(403, "spent", "Quota"))
    assert logs.is_expected_refusal(options_error(OptionsError({"size": "too big"})))
    assert getattr(ExpectedRefusal, logs.EXPECTED_REFUSAL_ATTR) is True
    assert not logs.is_expected_refusal(RuntimeError("fault"))
    assert not logs.is_expected_refusal(None)


# -- a deprecation eohub causes knowingly ------------------------------------------------

DEPRECATED = "Setting.x is deprecated. Please use y."
EXPLAINED = "eohub uses Setting.x (deprecated, still supported)."


def _host_log(name: str, applies: bool, level: int = logging.INFO) -> tuple[logging.Logger, list]:
    """A host application's logger (no propagation) with the filter, and what it writes."""
    logger = logging.getLogger(name)
    logger.propagate, logger.handlers, logger.filters = False, [], []
    logger.setLevel(level)
    written: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = written.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logs.explain_deprecation(logger, DEPRECATED, EXPLAINED, applies=lambda: applies)
    return logger, written


def test_a_known_deprecation_becomes_one_info_line_saying_why() -> None:
    logger, written = _host_log("test-host-known", applies=True)
    logger.warning(DEPRECATED)
    logger.warning("Other.y is deprecated.")  # another message keeps its level
    logger.warning("%s", DEPRECATED)  # the same words, not the same message
    assert [(r.levelname, r.getMessage()) for r in written] == [
        ("INFO", EXPLAINED),
        ("WARNING", "Other.y is deprecated."),
        ("WARNING", DEPRECATED),
    ]


def test_the_deprecation_warns_when_it_is_not_eohubs_use() -> None:
    logger, written = _host_log("test-host-site", applies=False)
    logger.warning(DEPRECATED)
    assert [(r.levelname, r.getMessage()) for r in written] == [("WARNING", DEPRECATED)]


def test_the_explanation_follows_the_hosts_level_and_is_installed_once() -> None:
    logger, written = _host_log("test-host-quiet", applies=True, level=logging.WARNING)
    logs.explain_deprecation(logger, DEPRECATED, "again", applies=lambda: True)
    assert len(logger.filters) == 1
    logger.warning(DEPRECATED)
    assert written == []  # an INFO line on a hub that writes warnings only
