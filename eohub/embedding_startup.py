"""What :func:`eohub.embedding.allow_embedding` can check only when the hub starts.

A config file often cannot see the hub's own address: Zero to JupyterHub sets neither
``c.JupyterHub.public_url`` nor ``bind_url``, and the test hubs and many sites set them
after the drop-ins. On a shared origin (no ``subdomain_host``) the hub's own origin in
``frame-ancestors`` is ``'self'`` by another name, so the hub checks its merged policy
when it builds its settings (``init_tornado_settings``), against ``public_url``, else its
``bind_url``, and stops with :class:`EmbeddingConfigError` if one source is the hub.
Without ``public_url`` the address browsers use (an ingress's, a proxy's) is unknown:
one WARNING asks for it.

The same moment folds every spelling of the header into ``Content-Security-Policy``,
for a lower-case one a parent config held where the drop-in could not see it.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from eohub.embedding_csp import CSP, fold_csp, frame_ancestors
from eohub.embedding_origins import EmbeddingConfigError, check_origins, origin_of
from eohub.hub.running_hub import observe_running_hub
from eohub.logs import attach, get_logger

log = get_logger(__name__)
_WATCHED = "_eohub_embedding_watched"


def _specific_host(url: str) -> bool:
    """Whether ``url`` names one host (not every interface, as ``http://:8000`` does)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("http") or "+unix" in parts.scheme:
        return False
    host = parts.hostname or ""
    try:
        return not ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return bool(host)


def check_started_hub(
    settings: dict[str, Any], *, subdomain_host: str, public_url: str, bind_url: str
) -> bool:
    """Fold the hub's CSP header into one spelling and check its ``frame-ancestors``.

    ``settings`` is the hub's ``tornado_settings``, changed in place. Raises
    :class:`EmbeddingConfigError` when a source is the hub's own origin on a shared
    origin (or covers the users' servers); returns whether the hub's public origin was
    known (``public_url`` or ``subdomain_host`` set).
    """

    others, policy = fold_csp(settings.get("headers") or {})
    if policy:
        settings["headers"] = {**others, CSP: policy}
    sources = frame_ancestors(policy)
    if subdomain_host:
        check_origins(sources, subdomain_host=subdomain_host, where="when the hub started")
        return True
    hub_url = public_url or (bind_url if _specific_host(bind_url) else "")
    where = "c.JupyterHub.public_url" if public_url else "c.JupyterHub.bind_url"
    if hub_url:
        check_origins(
            sources, hub_url=hub_url, where=f"the hub's origin, {origin_of(hub_url)}, from {where}"
        )
    return bool(public_url)


def _at_start(change: Any) -> None:
    hub, settings = change["owner"], change["new"]
    if settings.get("app") is not hub:
        return  # the config being loaded; init_tornado_settings adds the app itself
    known = check_started_hub(
        settings,
        subdomain_host=hub.subdomain_host,
        public_url=hub.public_url,
        bind_url=hub.bind_url,
    )
    if not known:
        attach(hub.log)
        log.warning(
            "eohub cannot check that no embedding origin is the hub's own public origin"
            " ('self' by another name while the users' servers share it):"
            " c.JupyterHub.public_url is not set, so the address browsers use (an"
            " ingress's, a proxy's) is unknown here. Set c.JupyterHub.public_url"
            " (hub.config.JupyterHub.public_url in Zero to JupyterHub) to the hub's public"
            " URL. {checked}",
            checked=(
                f"Compared only with its bind_url, {hub.bind_url}."
                if _specific_host(hub.bind_url)
                else f"Its bind_url, {hub.bind_url}, names no single host to compare."
            ),
        )


def watch_the_hub() -> None:
    """Check the hub reading this config when it starts (see the module docstring)."""
    observe_running_hub(_WATCHED, _at_start, ["tornado_settings"])


__all__ = ["EmbeddingConfigError", "check_started_hub", "watch_the_hub"]
