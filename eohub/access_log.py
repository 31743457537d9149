"""The hub's access log as fields: method, path, status, user, duration, address.

:func:`log_request` replaces JupyterHub's own ``log_request`` as the hub's tornado
``log_function`` (:func:`eohub.json_logs.json_logging` sets it). It keeps JupyterHub's
levels, its logger (``tornado.access``) and its Prometheus metrics, and writes the parts
as eohub fields, which :class:`eohub.json_logs.JsonFormatter` turns into keys. URLs
lose what may carry a credential: the query parameters named like one (``token``,
``_xsrf``, OAuth's ``code`` and ``state``...), also inside a ``next`` URL, and the
token in JupyterHub's old authorization paths.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from eohub.logs import EVENT_ATTR, FIELDS_ATTR, REDACTED, get_logger, render

log = get_logger(__name__)

#: Query parameters dropped from logged URLs: any whose name contains one of these
#: (JupyterHub's own list, and more).
SECRET_PARAM_PARTS: tuple[str, ...] = ("token", "auth", "key", "code", "state", "_xsrf", "secret")
SECRET_PARAM_PARTS += ("password", "passwd", "session", "signature", "credential")

#: Request headers whose values a failed request's line withholds: any whose name
#: contains one of these.
SECRET_HEADER_PARTS = ("authorization", "cookie", "token", "key", "secret", "password")

#: The access line's constant text (its ``event``).
ACCESS_EVENT = "{status} {method} {path} ({user}@{remote_addr}) {duration_ms:.2f}ms"


def _secret_param(name: str) -> bool:
    lowered = unquote_plus(name).lower()
    return any(part in lowered for part in SECRET_PARAM_PARTS)


def scrub_query(query: str) -> str:
    """``query`` without the parameters that may carry credentials.

    A kept parameter whose value is itself a URL (``next=/hub/user/x/?token=...``)
    is scrubbed in turn.
    """
    kept = []
    for part in query.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if _secret_param(name):
            continue
        decoded = unquote_plus(value)
        if "?" in decoded or "=" in decoded:
            cleaned = _scrubbed_or_none(decoded)
            if cleaned is None:
                value = ""  # not a URL urlsplit reads (``http://[::1?x``): dropped
            elif cleaned != decoded:
                value = quote(cleaned, safe="/:@")
        kept.append(name + sep + value)
    return "&".join(kept)


def scrub_path(path: str) -> str:
    """``path`` with the credential JupyterHub's old authorization API carries in it."""
    for marker in ("/api/authorizations/cookie/", "/api/authorizations/token/"):
        if marker in path:
            return path.split(marker, 1)[0] + marker + "[secret]"
    return path


def scrub_url(url: str) -> str:
    """``url`` (absolute or a path) with :func:`scrub_path` and :func:`scrub_query`.

    A password in the URL's authority (``https://user:pw@host/``) goes with the user
    name. A URL that ``urlsplit`` refuses (``http://[::1?x=1``: ValueError) is written
    as :data:`UNPARSABLE_URL`: a line must never fail because of what a client sent.
    """
    cleaned = _scrubbed_or_none(url)
    return UNPARSABLE_URL if cleaned is None else cleaned


#: What :func:`scrub_url` writes for a URL that cannot be parsed.
UNPARSABLE_URL = "[unparsable URL]"


def _scrubbed_or_none(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, scrub_path(parts.path), scrub_query(parts.query), ""))


def _username(handler: Any) -> str:
    """The request's user or service name, as JupyterHub's own access log finds it."""
    from tornado.web import HTTPError

    try:
        user = handler.current_user
    except (HTTPError, RuntimeError):
        return ""
    if user is None:
        return ""
    if isinstance(user, str):
        return user
    if isinstance(user, dict):
        return str(user.get("name", ""))
    return str(getattr(user, "name", ""))


def access_level(handler: Any, status: int, duration_ms: float) -> int:
    """JupyterHub's levels: successful static files, health checks and 304s at DEBUG
    (at least INFO when slower than a second), 4xx WARNING, 5xx ERROR."""
    from jupyterhub.handlers.pages import HealthCheckHandler
    from tornado.web import StaticFileHandler

    quiet = isinstance(handler, StaticFileHandler | HealthCheckHandler)
    if status == 304 or (status < 300 and quiet):
        level = logging.DEBUG
    elif status < 400:
        level = logging.INFO
    elif status < 500:
        level = logging.WARNING
    else:
        level = logging.ERROR
    return logging.INFO if duration_ms >= 1000 and level < logging.INFO else level


def access_fields(handler: Any) -> tuple[int, dict[str, object]]:
    """The level and the fields of ``handler``'s finished request."""
    request = handler.request
    status = handler.get_status()
    duration_ms = round(1000.0 * request.request_time(), 2)
    path, _, query = request.uri.partition("?")
    fields: dict[str, object] = {
        "status": status,
        "method": request.method,
        "path": scrub_path(path),
        "user": _username(handler),
        # Tornado's X-Forwarded-For / X-Real-Ip reading, which JupyterHub turns on.
        "remote_addr": request.remote_ip,
        "duration_ms": duration_ms,
    }
    query = scrub_query(query)
    if query:
        fields["query"] = query
    if status in (301, 302, 303, 307, 308):
        location = handler._headers.get("Location")  # tornado has no public getter
        cleaned = _scrubbed_or_none(location) if location else None
        if cleaned is not None:  # an unparsable one is left out
            fields["location"] = cleaned
    if status >= 500 and status not in (502, 503):
        # JupyterHub logs a failed request's headers, for the same debugging; the
        # values of credential headers (cookies, authorization) are redacted.
        fields["request_headers"] = {
            name: REDACTED if any(p in name.lower() for p in SECRET_HEADER_PARTS) else value
            for name, value in request.headers.get_all()
        }
    return access_level(handler, status, duration_ms), fields


def log_request(handler: Any) -> None:
    """The hub's access log line, as fields (``tornado_settings["log_function"]``).

    Written to tornado's access logger, as JupyterHub's own ``log_request`` does, and
    the request still counted in the hub's Prometheus metrics.
    """
    from jupyterhub.metrics import prometheus_log_method
    from tornado.log import access_log

    level, fields = access_fields(handler)
    if access_log.isEnabledFor(level):
        extra = {FIELDS_ATTR: fields, EVENT_ATTR: ACCESS_EVENT}
        access_log.log(level, render(ACCESS_EVENT, fields), extra=extra)
    prometheus_log_method(handler)


def service_log_request(handler: Any) -> None:
    """An eohub service's access line (the accounting service's ``log_function``).

    The hub's fields (:func:`access_fields`, without its request headers): the user is
    the caller the service identified (``handler.caller``), "" before that. Levels:
    INFO, 4xx WARNING, 5xx ERROR; written by this module's logger (``eohub.access_log``).
    """
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING
    level = logging.ERROR if status >= 500 else level
    if not log.is_enabled_for(level):
        return
    request = handler.request
    path, _, query = request.uri.partition("?")
    fields: dict[str, object] = {
        "status": status,
        "method": request.method,
        "path": scrub_path(path),
        "user": str(getattr(getattr(handler, "caller", None), "name", "") or ""),
        "remote_addr": request.remote_ip,
        "duration_ms": round(1000.0 * request.request_time(), 2),
    }
    if scrub_query(query):
        fields["query"] = scrub_query(query)
    # The hub's ACCESS_EVENT, written out: the logging convention wants the text here.
    log.log(level, "{status} {method} {path} ({user}@{remote_addr}) {duration_ms:.2f}ms", **fields)


# -- secrets in the lines the host writes itself -----------------------------------------

#: JupyterHub's line that shows the browser's session id (its cookie's value).
XSRF_COOKIE_LINE = "Setting new xsrf cookie for %r %r"
#: Tornado's ``RequestHandler.log_exception``: an HTTPError with a message (its format
#: starts so, the message follows) and an uncaught exception. Both show the full URI.
HTTP_ERROR_PREFIX = "%d %s: "
UNCAUGHT_LINE = "Uncaught exception %s\n%r"


#: A URL with a query in a line of text: up to a space or a quote.
_URL_IN_TEXT = re.compile(r"(?:https?://|/)[^\s\"'<>]*\?[^\s\"'<>]*")


def scrub_summary(summary: str) -> str:
    """Tornado's request summary ``GET /uri?query (1.2.3.4)`` with the URI scrubbed."""
    method, _, rest = summary.partition(" ")
    uri, paren, address = rest.rpartition(" (")
    if not paren:
        uri, address = rest, ""
    return f"{method} {scrub_url(uri)}{paren}{address}"


class _ScrubbedRequest:
    """Stands for a request in ``%r``: tornado's repr with the URI scrubbed."""

    def __init__(self, request: Any) -> None:
        self.text = repr(request)
        uri = getattr(request, "uri", None)
        if isinstance(uri, str):
            self.text = self.text.replace(repr(uri), repr(scrub_url(uri)))

    def __repr__(self) -> str:
        return self.text


class HostSecrets(logging.Filter):
    """Keep out of the log the secrets JupyterHub, tornado and oauthlib write themselves.

    Installed on the hub's handlers in every format (:func:`eohub.logs.attach`, which
    each eohub plugin calls, and the JSON logging config):

    - oauthlib's DEBUG lines (JupyterHub sends them to its log at ``log_level =
      "DEBUG"``) show OAuth authorization codes and states: dropped.
    - JupyterHub's INFO line "Setting new xsrf cookie for ..." shows the value of the
      ``jupyterhub-session-id`` cookie: that value is redacted, the line kept.
    - tornado's lines about a failed request ("403 GET /hub/api/...?token=... (addr):
      message", "Uncaught exception GET ...") show the whole URI, and JupyterHub's text
      access line a token inside a ``next`` URL: their URLs lose the parameters
      :func:`scrub_url` drops, the lines kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("oauthlib") and record.levelno < logging.INFO:
            return False
        args, msg = record.args, record.msg
        if not isinstance(msg, str):
            return True
        if record.funcName == "log_request" and not args and "?" in msg:
            # JupyterHub's text access line, already formatted: its own scrubbing
            # misses a token inside a URL parameter (``/hub/login?next=...%3Ftoken%3D``).
            record.msg = _URL_IN_TEXT.sub(lambda found: scrub_url(found.group(0)), msg)
        if not isinstance(args, tuple) or len(args) < 2:
            return True
        if msg == XSRF_COOKIE_LINE:
            record.args = (REDACTED, *args[1:])
        elif msg.startswith(HTTP_ERROR_PREFIX) and isinstance(args[1], str):
            record.args = (args[0], scrub_summary(args[1]), *args[2:])
        elif msg == UNCAUGHT_LINE and isinstance(args[0], str):
            record.args = (scrub_summary(args[0]), _ScrubbedRequest(args[1]), *args[2:])
        return True


def hide_host_secrets(logger: logging.Logger) -> None:
    """Put :class:`HostSecrets` on every handler ``logger``'s records reach, once each."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not any(isinstance(f, HostSecrets) for f in handler.filters):
                handler.addFilter(HostSecrets())
        current = current.parent if current.propagate else None


__all__ = [
    "ACCESS_EVENT",
    "HostSecrets",
    "access_fields",
    "access_level",
    "hide_host_secrets",
    "log_request",
    "scrub_query",
    "scrub_url",
    "service_log_request",
]
