"""The logging convention every eohub module follows.

Loggers
    One per module, named by the module under ``eohub.*`` (``eohub.auth.ldap``,
    ``eohub.adapters.accounting_db.store``...), from :func:`get_logger`, so an admin can
    set a level per layer: ``c.Application.logging_config = {"loggers": {"eohub.adapters":
    {"level": "DEBUG"}}}``. Plugin classes log through their module's logger too, not
    traitlets' ``self.log``; :func:`attach` sends the whole ``eohub`` tree to the
    application's handlers, as JupyterHub does for tornado's loggers, so every line lands
    in the hub's (or the accounting service's) log with its format.

Structured fields
    A message is a constant text; what varies is passed as keyword fields, one way only::

        log.warning("LDAP login of {user} refused: empty password", user=username)
        log.info("binderhub build finished", build=where, image=image)

    Fields named in the text (``{user}``, ``{name!r}``) are put there; the others are
    appended as ``key=value``. Nothing is dropped: the rendered line carries every field,
    and the record keeps them as ``record.eohub_fields`` (and the constant text as
    ``record.eohub_event``) for a structured formatter, the one hook
    (:func:`fields_of`). Values are quoted and escaped so that a user name cannot forge
    a log line, and fields that name secrets are never written. :func:`json_logging`
    turns the lines into JSON objects with the fields as keys (:mod:`eohub.json_logs`).

Levels
    An expected refusal (a user over quota, a denied repository, a wrong password) is one
    line at INFO or WARNING, without a traceback. An unexpected error is logged once,
    with its traceback, by :meth:`FieldLogger.exception` where it is handled, never
    again where it is re-raised.

Expected refusals in the host's log
    JupyterHub logs a failed spawn with its traceback in several places, whatever the
    cause. An exception marked as an expected refusal (its ``eohub_expected_refusal``
    attribute is true: :class:`eohub.spawner.errors.ExpectedRefusal`) loses that
    traceback, and an ERROR about it becomes a WARNING: :class:`QuietRefusals`, which
    :func:`attach` puts on the application's handlers. One line about it is kept, so the
    reason is still in the log; a JupyterHub line that only repeats it goes. Any other
    exception's traceback is written once, even where JupyterHub and tornado both log it.

Known deprecations in the host's log
    Where eohub must use a setting its host calls deprecated (JupyterHub's
    ``extra_handlers``), :class:`KnownDeprecation` turns that one warning into an INFO
    line that says what eohub uses it for.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import re
import string
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from traitlets.config import Config

#: Record attributes that a structured formatter reads.
FIELDS_ATTR = "eohub_fields"
EVENT_ATTR = "eohub_event"

#: The attribute that marks an exception as an expected refusal (see the docstring).
EXPECTED_REFUSAL_ATTR = "eohub_expected_refusal"

#: Field names whose values are never written, whatever the caller passes.
SECRET_FIELDS = frozenset({"password", "token", "secret", "authorization", "cookie", "api_key"})
#: Parts of a field name that mark a secret too (``client_secret``, ``bind_password``).
SECRET_NAME_PARTS: tuple[str, ...] = ("password", "passwd", "secret", "token", "cookie")
SECRET_NAME_PARTS += ("credential", "authorization", "api_key", "api-key", "apikey")
REDACTED = "[redacted]"
MAX_VALUE = 500

_PLAIN = re.compile(r"[A-Za-z0-9_.,:/@+*#%-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_FORMATTER = string.Formatter()


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (its value is never written)."""
    lowered = name.lower()
    return lowered in SECRET_FIELDS or any(part in lowered for part in SECRET_NAME_PARTS)


def get_logger(name: str) -> FieldLogger:
    """The logger of module ``name`` (pass ``__name__``), which must be under ``eohub``."""
    if name != "eohub" and not name.startswith("eohub."):
        raise ValueError(f"eohub loggers are named under 'eohub.', not {name!r}")
    return FieldLogger(logging.getLogger(name))


def attach(application_log: logging.Logger) -> None:
    """Send the ``eohub`` loggers to ``application_log``'s handlers, once per process.

    JupyterHub's and the accounting service's application loggers do not propagate to
    the root logger, so without this a module's INFO line would go nowhere. The first
    application to attach wins: a hub has one.

    Every handler the application's records reach also gets
    :class:`eohub.access_log.HostSecrets`, whatever the log format: the secrets
    JupyterHub, tornado and oauthlib write themselves (a session id, a token in a
    failed request's URI, OAuth codes) never reach a line. Each eohub plugin calls
    this, so any hub that uses eohub gets it.
    """
    quiet_expected_refusals(application_log)
    # By name, as json_logging below: eohub.access_log builds on this module.
    importlib.import_module("eohub.access_log").hide_host_secrets(application_log)
    root = logging.getLogger("eohub")
    if application_log.name == "eohub" or getattr(root, "_eohub_attached", False):
        return
    root.parent = application_log
    root._eohub_attached = True  # type: ignore[attr-defined]
    # Loggers remember which levels were enabled under their old parent; setting the
    # level again clears that memory, or a line logged before attaching would keep
    # INFO off for good.
    root.setLevel(root.level)


def json_logging(c: Config, *, level: str | None = None) -> None:
    """Make the hub configured by ``c`` write JSON lines, its access log as fields.

    See :mod:`eohub.json_logs` (imported only here, so this module needs no more than
    the standard library); drop-in ``40-eohub-json-logs.py`` calls it when
    ``$EOHUB_LOG_FORMAT=json``.
    """
    # By name: eohub.json_logs builds on this module, which must not import it back.
    implementation = importlib.import_module("eohub.json_logs").json_logging
    implementation(c, level=level)


def run_logged(app: Any, argv: list[str] | None, name: str) -> None:
    """``app.initialize(argv)`` then ``app.start()`` (a traitlets application).

    A failure there (a database down at start, a port taken) is logged once, with its
    traceback, by the application's handlers (JSON lines when asked), and the program
    exits with status 1: not Python's bare traceback on stderr, which a log shipper
    reading JSON lines would take apart line by line.
    """
    try:
        app.initialize(argv)
        app.start()
    except Exception as e:
        attach(app.log)
        get_logger(__name__).exception("{program} stopped: {error}", program=name, error=e)
        sys.exit(1)


def is_expected_refusal(error: BaseException | None) -> bool:
    """Whether ``error`` refuses what a user asked for, rather than a fault."""
    return error is not None and getattr(error, EXPECTED_REFUSAL_ATTR, False) is True


class QuietRefusals(logging.Filter):
    """Keep one line per refusal; drop the tracebacks an operator does not need.

    - An expected refusal's traceback goes, and an ERROR about one (with the refusal
      attached, or logged while it is being handled) becomes a WARNING.
    - JupyterHub's line "Exception applying user_options for ..." about an expected
      refusal goes: the spawn's own "Error starting" line says it again (JupyterHub 6).
      That line about any other exception stays.
    - An unexpected exception's traceback is written once: JupyterHub logs a failed
      spawn's, then tornado logs it again as it answers the request ("Uncaught
      exception"); the second line keeps its text only.
    - An empty traceback goes (``exc_info`` with no exception: JupyterHub 5 logs a
      failed spawn with ``log.exception`` outside an ``except``: "NoneType: None").

    Drops no other record. Each record is judged once, whichever handler sees it
    first, and every handler follows that verdict.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        verdict: bool | None = getattr(record, _JUDGED_ATTR, None)
        if verdict is None:
            verdict = self._judge(record)
            setattr(record, _JUDGED_ATTR, verdict)
        return verdict

    def _judge(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if is_expected_refusal(error) and _repeats_a_refusal(record):
            return False
        if is_expected_refusal(error) and record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if not record.exc_info:
            return True
        if error is None or is_expected_refusal(error) or _traceback_written(error):
            record.exc_info, record.exc_text = None, None
        return True


#: JupyterHub's messages (the format, before its arguments) that only repeat what its
#: "Error starting" line says about a refused spawn.
REPEATED_REFUSAL_LINES = frozenset({"Exception applying user_options for %s"})


def _repeats_a_refusal(record: logging.LogRecord) -> bool:
    return isinstance(record.msg, str) and record.msg in REPEATED_REFUSAL_LINES


_JUDGED_ATTR = "_eohub_judged"
_WRITTEN_ATTR = "_eohub_traceback_written"


def _traceback_written(error: BaseException) -> bool:
    """Whether ``error``'s traceback was logged before; marks it as logged now."""
    if getattr(error, _WRITTEN_ATTR, False):
        return True
    with contextlib.suppress(AttributeError):  # an exception without a __dict__
        setattr(error, _WRITTEN_ATTR, True)
    return False


def quiet_expected_refusals(logger: logging.Logger) -> None:
    """Put :class:`QuietRefusals` on every handler ``logger``'s records reach, once each.

    On the handlers, not the logger: a logger's filters do not see the records that its
    children (tornado's loggers, under JupyterHub's) pass up to it.
    """
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not any(isinstance(f, QuietRefusals) for f in handler.filters):
                handler.addFilter(QuietRefusals())
        current = current.parent if current.propagate else None


class KnownDeprecation(logging.Filter):
    """Turn one deprecation warning that eohub causes knowingly into an INFO line saying so.

    A host (JupyterHub) warns about a setting eohub must use, with advice that does not
    apply; an operator reads it as something to fix. On the host's logger, this filter
    rewrites the record whose text is exactly ``message`` (a WARNING, without arguments)
    into ``explanation`` at INFO, while ``applies()`` says eohub's use is what it is
    about (a site's own use keeps its warning). Drops nothing else; the rewritten line
    goes too when the logger does not write INFO.
    """

    def __init__(self, message: str, explanation: str, applies: Callable[[], bool]) -> None:
        super().__init__()
        self.message, self.explanation, self.applies = message, explanation, applies

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or record.msg != self.message or record.args:
            return True
        if not self.applies():
            return True
        record.msg, record.args = self.explanation, ()
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def explain_deprecation(
    logger: logging.Logger, message: str, explanation: str, applies: Callable[[], bool]
) -> KnownDeprecation:
    """Put a :class:`KnownDeprecation` for ``message`` on ``logger``, once; return it."""
    for existing in logger.filters:
        if isinstance(existing, KnownDeprecation) and existing.message == message:
            return existing
    known = KnownDeprecation(message, explanation, applies)
    logger.addFilter(known)
    return known


def fields_of(record: logging.LogRecord) -> Mapping[str, object]:
    """The structured fields of ``record`` (empty for a record not from eohub)."""
    fields: Mapping[str, object] = getattr(record, FIELDS_ATTR, {})
    return fields


def render_value(value: object) -> str:
    """A field value as written after ``key=``: plain when safe, else JSON-quoted."""
    if value is None or isinstance(value, bool | int | float):
        return str(value)
    text = _shorten(str(value))
    return text if _PLAIN.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "..."


class _Inline:
    """A value placed in the text: control characters escaped, secrets withheld."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        text = _shorten(format(self.value, spec))
        return _CONTROL.sub(lambda m: json.dumps(m.group(0))[1:-1], text)

    def __repr__(self) -> str:
        return _shorten(repr(self.value))


class _Fill(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(event: str, fields: Mapping[str, object]) -> str:
    """``event`` with its named fields filled in and the rest appended as ``key=value``."""
    shown = {k: (REDACTED if is_secret_name(k) else v) for k, v in fields.items()}
    named = {name for _, name, _, _ in _FORMATTER.parse(event) if name}
    # A name without a field stays as written: a log call must never raise.
    # (tests/test_logs.py checks every call site gives the fields its text names.)
    text = event.format_map(_Fill({k: _Inline(v) for k, v in shown.items()})) if named else event
    rest = " ".join(f"{k}={render_value(v)}" for k, v in shown.items() if k not in named)
    return f"{text} {rest}" if rest else text


class FieldLogger:
    """A module's logger that takes structured fields (see the module docstring)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    @property
    def name(self) -> str:
        return self.logger.name

    def is_enabled_for(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)

    def debug(self, event: str, /, **fields: object) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, /, **fields: object) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, /, **fields: object) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, /, **fields: object) -> None:
        self._log(logging.ERROR, event, fields)

    def critical(self, event: str, /, **fields: object) -> None:
        """A failure that ends the program (a command's bad arguments, a missing config)."""
        self._log(logging.CRITICAL, event, fields)

    def exception(self, event: str, /, **fields: object) -> None:
        """An unexpected error, with the traceback of the exception being handled."""
        self._log(logging.ERROR, event, fields, exc_info=True)

    def log(self, level: int, event: str, /, **fields: object) -> None:
        self._log(level, event, fields)

    def _log(
        self, level: int, event: str, fields: dict[str, object], *, exc_info: bool = False
    ) -> None:
        if not self.logger.isEnabledFor(level):
            return
        extra: dict[str, Any] = {
            FIELDS_ATTR: {k: (REDACTED if is_secret_name(k) else v) for k, v in fields.items()},
            EVENT_ATTR: event,
        }
        # No arguments, so a '%' in a value is never taken for a format.
        self.logger.log(
            level, render(event, fields), exc_info=exc_info or None, extra=extra, stacklevel=3
        )
