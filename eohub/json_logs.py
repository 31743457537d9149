"""Structured JSON logs: one JSON object per line, for Elasticsearch, Loki or Splunk.

:func:`json_logging` switches a hub to them (drop-in ``40-eohub-json-logs.py`` calls it
when ``$EOHUB_LOG_FORMAT=json``):

- the hub's, tornado's and eohub's lines go through :class:`JsonFormatter` on the hub's
  stderr handler (traitlets' ``console``, set through ``c.JupyterHub.logging_config``);
- the access log is written by :func:`eohub.access_log.log_request` (the hub's
  ``tornado_settings["log_function"]``) with its parts as keys: method, path, status,
  user, duration, remote address;
- eohub's managed services (the accounting service, the storage sampler) get
  ``EOHUB_LOG_FORMAT=json`` in their environment, unless their entry sets it, and then
  log JSON too (:func:`environment_logging_config`).

It works both where the drop-ins share one ``c`` (Zero to JupyterHub) and where each is
loaded with ``load_subconfig`` (:func:`_follow_the_running_hub`), and keeps a site's
own ``logging_config`` whenever it is set: the merge waits for the hub to load its
config (:class:`JsonLoggingConfig`).

Secrets never reach a line: fields named like one are redacted (the text log's rule,
widened), and query strings lose every parameter whose name looks like a credential.
What the host writes itself is filtered by :class:`eohub.access_log.HostSecrets`, in
text mode too (:func:`eohub.logs.attach` installs it).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from eohub.access_log import HostSecrets, log_request
from eohub.hub.running_hub import observe_running_hub
from eohub.hub.tornado_settings import merge_tornado_settings
from eohub.logs import (
    EVENT_ATTR,
    FIELDS_ATTR,
    MAX_VALUE,
    REDACTED,
    fields_of,
    is_secret_name,
    render,
)

try:
    from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter
except ImportError:  # python-json-logger 2.x
    from pythonjsonlogger.jsonlogger import (  # type: ignore[no-redef,attr-defined,unused-ignore]
        JsonFormatter as _BaseJsonFormatter,
    )

#: The environment variable that selects the log format of the hub (drop-in 40) and of
#: eohub's services: ``json``, or ``text`` (the default).
LOG_FORMAT_ENV = "EOHUB_LOG_FORMAT"
LOG_FORMATS = ("text", "json")

#: The keys every line has (``event``, ``exc_info``, ``stack_info`` when they apply).
STANDARD_KEYS: tuple[str, ...] = ("timestamp", "level", "logger", "module", "line", "message")
STANDARD_KEYS += ("event", "exc_info", "stack_info")
#: A field named like a standard key is written as ``field_<name>`` (``field_message``).
CLASH_PREFIX = "field_"

# Attributes a record carries that are not fields: logging's own (args, msg,
# created...), eohub's (read separately), and what text formatters add to a record.
_NOT_FIELDS = frozenset(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__)
_NOT_FIELDS |= {"message", "asctime", "color", "end_color", "highlevel", FIELDS_ATTR, EVENT_ATTR}


def json_value(value: object, depth: int = 0) -> object:
    """``value`` as JSON can carry it: containers kept, secrets inside redacted, other
    objects as text; long text shortened; NaN and infinities as text (not JSON)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping) and depth < 4:
        return {
            str(k): REDACTED if is_secret_name(str(k)) else json_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset) and depth < 4:
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [json_value(v, depth + 1) for v in items]
    text = str(value)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "..."


def _put(data: dict[str, Any], name: str, value: object) -> None:
    """Set ``name`` in ``data``, under a safe name if it is taken: never dropped."""
    key = name
    while key in data or key in STANDARD_KEYS:
        key = CLASH_PREFIX + key
    data[key] = REDACTED if is_secret_name(name) else json_value(value)


def _utc_iso(created: float) -> str:
    stamp = datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JsonFormatter(_BaseJsonFormatter):
    """python-json-logger's formatter, with eohub's fields as top-level keys.

    A line holds ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``module``,
    ``line``, ``message`` (the rendered text), ``event`` (an eohub line's constant
    text), each eohub field (``record.eohub_fields``) and any other ``extra`` a library
    passed, then ``exc_info`` (the traceback, one string) when there is one. A field
    whose name is a standard key is kept as ``field_<name>``; a field named like a
    secret (:func:`is_secret_name`) is written as ``[redacted]``.

    The format string a logging config passes (traitlets' ``log_format`` for its
    ``console`` handler) is ignored: the keys are fixed, so every line reads alike.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: str = "%",
        validate: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("defaults", None)
        super().__init__(None, datefmt, "%", **kwargs)

    def add_fields(
        self,
        log_data: dict[str, Any],
        record: logging.LogRecord,
        message_dict: dict[str, Any],
    ) -> None:
        log_data["timestamp"] = _utc_iso(record.created)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["module"] = record.module
        log_data["line"] = record.lineno
        fields = fields_of(record)
        event = getattr(record, EVENT_ATTR, None)
        if isinstance(event, str):
            # Rendered again: the text log withholds exactly-named secrets only.
            shown = {k: REDACTED if is_secret_name(k) else v for k, v in fields.items()}
            log_data["message"] = render(event, shown)
            log_data["event"] = event
        else:
            message = getattr(record, "message", None)
            log_data["message"] = message if isinstance(message, str) else record.getMessage()
        for name, value in fields.items():
            _put(log_data, name, value)
        for name, value in record.__dict__.items():
            if name not in _NOT_FIELDS and not name.startswith("_"):
                _put(log_data, name, value)
        for name, value in message_dict.items():
            if name in ("exc_info", "stack_info"):
                if value:
                    log_data[name] = value if isinstance(value, str) else str(value)
            else:
                _put(log_data, name, value)


# -- configuration -----------------------------------------------------------------------

_JSON_CLASS = f"{__name__}.JsonFormatter"
_SECRETS_CLASS = f"{HostSecrets.__module__}.HostSecrets"
_FOLLOWED_ATTR = "_eohub_json_logging"


def json_logging_config() -> dict[str, Any]:
    """The part of a traitlets application's ``logging_config`` that makes it log JSON.

    traitlets merges it into its default config: the ``console`` handler (stderr) gets
    :class:`JsonFormatter` and :class:`HostSecrets`; the root logger writes its
    warnings there too, so a library logging outside the application's tree is JSON.
    """
    return {
        "formatters": {"console": {"class": _JSON_CLASS}},
        "filters": {"eohub_host_secrets": {"()": _SECRETS_CLASS}},
        "handlers": {"console": {"filters": ["eohub_host_secrets"]}},
        "root": {"level": "WARNING", "handlers": ["console"]},
    }


def log_format_from_environment() -> str:
    """``$EOHUB_LOG_FORMAT`` (``text`` when unset); ValueError naming it if unknown."""
    value = os.environ.get(LOG_FORMAT_ENV, "").strip().lower() or "text"
    if value not in LOG_FORMATS:
        raise ValueError(
            f"{LOG_FORMAT_ENV}={value!r}: use one of {', '.join(LOG_FORMATS)}, or unset it"
        )
    return value


def environment_logging_config() -> dict[str, Any]:
    """An eohub application's default ``logging_config``: JSON when
    ``$EOHUB_LOG_FORMAT=json`` (which :func:`json_logging` sets on managed services),
    else nothing (an unknown value means text: the hub's drop-in refuses it first)."""
    try:
        chosen = log_format_from_environment()
    except ValueError:
        chosen = "text"
    if chosen != "json":
        return {}
    _capture_warnings()
    return json_logging_config()


def with_json(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (a site's ``logging_config``) completed with :func:`json_logging_config`.

    What the site set stands: its levels, its handlers and its own console formatter,
    if it names one. JSON's parts fill in what it left unset, and lists are joined, not
    replaced: the root logger's ``handlers`` get ``console`` after the site's (a
    ``file``, say), the console handler's ``filters`` the secrets filter.
    """
    return _filled(_copy(dict(config)), json_logging_config())


def _filled(target: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        old = target.get(key)
        if isinstance(value, Mapping) and isinstance(old, dict):
            _filled(old, value)
        elif isinstance(value, list) and isinstance(old, list):
            target[key] = [*old, *(item for item in value if item not in old)]
        elif key not in target:
            target[key] = _copy(value)
    return target


def _site_merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra`` at every depth, as traitlets merges a
    ``logging_config`` into its defaults: the later setting wins, dicts merge."""
    merged: dict[str, Any] = _copy(dict(base))
    for key, value in extra.items():
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, dict):
            merged[key] = _site_merged(old, value)
        else:
            merged[key] = _copy(value)
    return merged


class JsonLoggingConfig(LazyConfigValue):
    """``logging_config`` as :func:`json_logging` leaves it, applied at load time.

    The hub reads its config after every file ran; only then is the site's whole
    ``logging_config`` known: ``c.Application``'s (traitlets merges it under
    ``c.JupyterHub``'s, whatever the order of the files), a value an outer file set
    before a ``load_subconfig``, what this object holds (``c.JupyterHub``'s value
    when :func:`json_logging` ran). The result is all of it merged, later over
    earlier as traitlets would, then :func:`with_json`. Not cached: each load starts
    again from what is set then.
    """

    def merge_into(self, other: Any) -> Any:
        # What was set before (an outer file's value, ``c.Application``'s, a pending
        # ``.update({...})``) goes below this one, and the result stays deferred: a
        # ``c.Application`` value set later still merges in at load.
        below = other._update if isinstance(other, LazyConfigValue) else other
        merged = JsonLoggingConfig()
        merged._update = _site_merged(dict(below or {}), self._update or {})
        return merged

    def get_value(self, initial: Any) -> Any:
        return with_json(_site_merged(dict(initial or {}), self._update or {}))


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return list(value) if isinstance(value, list) else value


def _set_so_far(section: Config, name: str) -> dict[str, Any]:
    value = section.get(name, {})
    if isinstance(value, LazyConfigValue):
        # Its pending update only: get_value() would cache a result made from {}.
        value = value.to_dict().get("update", {})
    copied: dict[str, Any] = _copy(dict(value))
    return copied


def _service_entries(c: Config) -> list[dict[str, Any]]:
    """The ``services`` entries set so far with ``c`` (appended ones included)."""
    services = c.JupyterHub.get("services", [])
    if not isinstance(services, LazyConfigValue):
        return [s for s in services if isinstance(s, dict)]
    pending = services.to_dict()
    inserted = [entry for _, entry in pending.get("inserts", [])]
    found = [*pending.get("prepend", []), *inserted, *pending.get("extend", [])]
    return [s for s in found if isinstance(s, dict)]


#: The managed services that are eohub's by name (their command may be a wrapper).
EOHUB_SERVICES = frozenset({"eohub-accounting", "eohub-storage-sampler"})


def is_eohub_service(service: Mapping[str, Any]) -> bool:
    """Whether ``service`` (a ``services`` entry) is one of eohub's managed services:
    named as one, or started by a command that runs eohub (``-m eohub.accounting``)."""
    command = service.get("command") or []
    if not command:
        return False
    words = [command] if isinstance(command, str) else [str(word) for word in command]
    return service.get("name") in EOHUB_SERVICES or any("eohub" in word for word in words)


def _json_services(services: list[Any]) -> None:
    """Give eohub's managed services ``EOHUB_LOG_FORMAT=json``, unless their entry sets
    the variable itself. Other services are left alone: the variable means nothing to
    them, and a program of a site's own may read it otherwise."""
    for service in services:
        if isinstance(service, dict) and is_eohub_service(service):
            environment = dict(service.get("environment") or {})
            environment.setdefault(LOG_FORMAT_ENV, "json")
            service["environment"] = environment


def _keep_json(change: Any) -> None:
    """An observer of the hub's merged settings: see :func:`_follow_the_running_hub`."""
    hub, name, new = change["owner"], change["name"], change["new"]
    if name == "services":
        _json_services(new)
    elif name == "tornado_settings" and "log_function" not in new:
        hub.tornado_settings = {**new, "log_function": log_request}
    elif name == "logging_config" and with_json(new) != new:
        hub.logging_config = with_json(new)


def _follow_the_running_hub() -> None:
    """Keep JSON on in a hub that merges several config files.

    A file loaded with ``load_subconfig`` (drop-ins outside Zero to JupyterHub) sees
    only its own ``c``: not the services other files add, and a later file that
    assigns ``logging_config`` or ``tornado_settings`` replaces this one's. In a hub
    reading its config, the merged values are therefore completed as they are set: the
    eohub's managed services get the variable, the JSON parts of the logging config
    are filled in again (:func:`with_json`: a console formatter a file names stands),
    and the access log comes back unless a file set a ``log_function`` of its own.
    """
    hub = observe_running_hub(
        _FOLLOWED_ATTR, _keep_json, ["logging_config", "tornado_settings", "services"]
    )
    if hub is None:
        return
    # JSON from now on: the hub logs as it applies its config (a deprecation, say),
    # before its logging_config is set.
    hub.logging_config = with_json(hub.logging_config)
    _capture_warnings()


def _capture_warnings() -> None:
    """Send Python's warnings (a library's deprecation, printed on stderr as two lines
    of text) through logging, to the root logger's JSON handler."""
    logging.captureWarnings(True)


def json_logging(c: Config, *, level: str | None = None) -> None:
    """Make the hub configured by ``c`` log JSON lines (see the module docstring).

    Keeps what the site set: its own ``logging_config`` (``c.Application``'s, then
    ``c.JupyterHub``'s, whenever set) is merged, not replaced
    (:class:`JsonLoggingConfig`), and so are its ``tornado_settings``. eohub's managed
    services get ``EOHUB_LOG_FORMAT=json``, also those other drop-ins add. ``level``
    sets the hub's ``log_level`` (``"DEBUG"``...), when given.
    """
    lazy = JsonLoggingConfig()
    lazy._update = _set_so_far(c.JupyterHub, "logging_config")
    c.JupyterHub.logging_config = lazy
    if level is not None:
        c.JupyterHub.log_level = level.upper()
    merge_tornado_settings(c.JupyterHub, {"log_function": log_request})
    _json_services(_service_entries(c))
    _follow_the_running_hub()


__all__ = [
    "LOG_FORMAT_ENV",
    "HostSecrets",
    "JsonFormatter",
    "JsonLoggingConfig",
    "environment_logging_config",
    "is_secret_name",
    "json_logging",
    "json_logging_config",
    "log_format_from_environment",
    "with_json",
]
