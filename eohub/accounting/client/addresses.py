"""Where the hub finds the accounting service, and how many quota checks it may send at once."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from traitlets import TraitError

from eohub.accounting.scopes import SERVICE_NAME

DEFAULT_SERVICE_ROOT = "http://127.0.0.1:10101"
SERVICE_PREFIX = f"/services/{SERVICE_NAME}/"
DEFAULT_URL = DEFAULT_SERVICE_ROOT + SERVICE_PREFIX


def hub_spawn_limit(config: Any) -> int:
    """The hub's ``JupyterHub.concurrent_spawn_limit``; 64 (the chart's) when unlimited.

    The running hub's value where there is one (its default included), else the config's.
    """
    limit: Any = None
    try:
        from jupyterhub.app import JupyterHub

        if JupyterHub.initialized():
            limit = JupyterHub.instance().concurrent_spawn_limit
    except ImportError:  # pragma: no cover - jupyterhub is a dependency
        pass
    if limit is None and "JupyterHub" in config:
        limit = config.JupyterHub.get("concurrent_spawn_limit")
    return int(limit) if isinstance(limit, int) and limit > 0 else 64


def service_url(url: str) -> str:
    """The API base that paths are appended to; TraitError if ``url`` cannot be one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise TraitError(
            "AccountingClient.url must be an http:// or https:// URL without a query, "
            f"like {DEFAULT_URL}; got {url!r}"
        )
    if parts.path in ("", "/"):
        # The service's own address: JupyterHub serves a service under its prefix.
        return url.rstrip("/") + SERVICE_PREFIX
    return url if url.endswith("/") else url + "/"


__all__ = [
    "DEFAULT_SERVICE_ROOT",
    "DEFAULT_URL",
    "SERVICE_PREFIX",
    "hub_spawn_limit",
    "service_url",
]
