"""Let a portal embed the hub and the users' JupyterLab in an iframe.

JupyterHub (since 4.1) and its single-user servers send ``Content-Security-Policy:
frame-ancestors 'none'``: no page may frame them. :func:`allow_embedding` names the
portal origins that may, for the hub (``c.JupyterHub.tornado_settings``, merged with
what the site or the Zero to JupyterHub chart set there) and for every user's server
(a ``--ServerApp.tornado_settings=`` argument in the spawner's ``args``, which the
local spawner and KubeSpawner both pass to ``jupyterhub-singleuser``).

What it refuses, at start-up, with :class:`EmbeddingConfigError`:

- ``*``: any site could frame a logged-in user's hub and trick them into clicks
  (clickjacking);
- ``'self'``, or the hub's own origin, when the hub and the users' servers share one
  origin (no ``c.JupyterHub.subdomain_host``): every user's server could then frame the
  hub, and another user's JupyterLab, as JupyterHub's security overview explains;
- an origin that is not ``scheme://host[:port]``: paths, queries, other CSP keywords;
  ``http`` except on loopback (``localhost``, ``127.0.0.0/8``, ``[::1]``), for tests;
- a host wildcard other than ``https://*.<domain>.<tld>`` (CSP matches it against every
  subdomain, at any depth, never the domain itself), one over a well-known shared
  suffix (``*.co.uk``, ``*.github.io``: :data:`eohub.embedding_origins.SHARED_SUFFIXES`,
  not exhaustive), and any wildcard or origin that covers the users' servers'
  subdomains; port 0; a host name not in ASCII (the message gives its ``xn--`` form).

The hub's own address is often unknown to a config file (Zero to JupyterHub sets
neither ``public_url`` nor ``bind_url``): :mod:`eohub.embedding_startup` checks the
merged policy again when the hub starts, and warns once when ``public_url`` is unset.

The header is always written as ``Content-Security-Policy``: a site's other spelling
(``content-security-policy``) is folded into it, because the single-user server's own
default is added under the canonical name and would win over it.

Cookies: a framed page on another site gets its cookies only if they are
``SameSite=None; Secure``, so the hub's cookies (``cookie_options``, which JupyterHub
also hands to every server it spawns, and ``xsrf_cookie_kwargs``) and the servers' XSRF
cookie get those attributes. Browsers keep ``Secure`` cookies only from https pages
(and from loopback): the hub must be served over https.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from eohub.embedding_csp import (
    CSP,
    fold_csp,
    frame_ancestors,
    with_frame_ancestors,
)
from eohub.embedding_origins import (
    EmbeddingConfigError,
    check_origin,
    check_origins,
    split_origins,
)
from eohub.hub.tornado_settings import current_settings, deep_merged, merge_tornado_settings

#: The cookie attributes a cross-site frame needs.
CROSS_SITE_COOKIES: dict[str, Any] = {"samesite": "None", "secure": True}
#: The single-user server's command-line setting eohub writes (and merges with).
SERVER_SETTINGS_ARG = "--ServerApp.tornado_settings="


def _drop_other_spellings(section: Config) -> None:
    """Remove from ``section.tornado_settings['headers']`` the CSP header's spellings
    other than ``Content-Security-Policy`` (their directives were folded into it)."""
    value = section["tornado_settings"]
    stored = value._update if isinstance(value, LazyConfigValue) else value
    headers = (stored or {}).get("headers")
    if isinstance(headers, dict):
        for key in [k for k in headers if k.lower() == CSP.lower() and k != CSP]:
            del headers[key]


def _section(c: Config, name: str) -> Config:
    """``c[name]`` without creating it (reading ``c.Name`` adds an empty section)."""
    return c[name] if name in c else Config()


def _config_str(section: Config, name: str) -> str:
    value = section.get(name, "") if name in section else ""
    return value if isinstance(value, str) else ""


def _report_uri(c: Config) -> str:
    """JupyterHub's own CSP report URL, which its default header names."""
    base_url = _config_str(_section(c, "JupyterHub"), "base_url") or "/"
    return "/" + "/".join(p for p in (*base_url.split("/"), "hub", "security", "csp-report") if p)


__all__ = [
    "CROSS_SITE_COOKIES",
    "CSP",
    "SERVER_SETTINGS_ARG",
    "EmbeddingConfigError",
    "allow_embedding",
    "check_origin",
    "check_origins",
    "fold_csp",
    "server_settings",
    "split_origins",
    "with_frame_ancestors",
]


def _hub_url(c: Config) -> str:
    hub = _section(c, "JupyterHub")
    return _config_str(hub, "public_url") or _config_str(hub, "bind_url")


def allow_embedding(c: Config, origins: Iterable[str]) -> None:
    """Let pages on ``origins`` frame the hub and the users' servers.

    Merges into ``c.JupyterHub.tornado_settings`` (the ``Content-Security-Policy``
    header's ``frame-ancestors``, keeping its other directives; SameSite=None and Secure
    for ``cookie_options`` and ``xsrf_cookie_kwargs``) and into the spawner's ``args``
    (``--ServerApp.tornado_settings=`` for the servers). Calling it again adds origins;
    the same origins twice change nothing. Raises :class:`EmbeddingConfigError`, with
    nothing changed, for an origin it refuses (see the module's docstring).
    """
    subdomain_host = _config_str(_section(c, "JupyterHub"), "subdomain_host")
    hub_url = _hub_url(c)
    wanted = check_origins(list(origins), subdomain_host=subdomain_host, hub_url=hub_url)
    if not wanted:
        raise EmbeddingConfigError("allow_embedding: no origin given (unset it to embed none)")
    _, hub_policy = fold_csp(current_settings(_section(c, "JupyterHub")).get("headers", {}))
    kept = check_origins(
        frame_ancestors(hub_policy),
        subdomain_host=subdomain_host,
        hub_url=hub_url,
        where="already in c.JupyterHub.tornado_settings['headers']",
    )
    hub_sources = kept + [s for s in wanted if s not in kept]
    # Each spawner section's args is checked before any of them is changed.
    server_args = {
        name: _with_server_settings(c, name, wanted, subdomain_host=subdomain_host)
        for name in _spawner_sections(c)
    }
    policy = with_frame_ancestors(hub_policy, hub_sources, report_uri=_report_uri(c))
    merge_tornado_settings(
        c.JupyterHub,
        {
            "headers": {CSP: policy},
            "cookie_options": CROSS_SITE_COOKIES,
            "xsrf_cookie_kwargs": CROSS_SITE_COOKIES,
        },
    )
    _drop_other_spellings(c.JupyterHub)
    for apply in server_args.values():
        apply()
    # The hub's own address is often set after this call, or not at all.
    from eohub.embedding_startup import watch_the_hub

    watch_the_hub()


def _spawner_sections(c: Config) -> list[str]:
    """``Spawner`` and each spawner class whose own ``args`` would hide ``Spawner``'s."""
    overriding = (n for n in c if n.endswith("Spawner") and n != "Spawner" and "args" in c[n])
    return ["Spawner", *sorted(overriding)]


def server_settings(existing: Mapping[str, Any], sources: list[str]) -> dict[str, Any]:
    """A single-user server's ``tornado_settings`` with ``sources`` allowed to frame it."""
    settings = deep_merged(existing, {"xsrf_cookie_kwargs": CROSS_SITE_COOKIES})
    headers = settings.get("headers")
    others, policy = fold_csp(headers if isinstance(headers, Mapping) else {})
    kept = frame_ancestors(policy)
    # JupyterHub's own default for the servers has no report-uri; nor does this.
    policy = with_frame_ancestors(policy, kept + [s for s in sources if s not in kept])
    settings["headers"] = {**others, CSP: policy}
    return settings


def _parse_server_arg(arg: str) -> dict[str, Any]:
    try:
        value = ast.literal_eval(arg.removeprefix(SERVER_SETTINGS_ARG))
    except (ValueError, SyntaxError) as e:
        raise EmbeddingConfigError(
            f"the spawner's argument {arg!r} is not a Python dict literal, which"
            " jupyterhub-singleuser needs; fix it before allow_embedding merges into it"
        ) from e
    if not isinstance(value, dict):
        raise EmbeddingConfigError(f"the spawner's argument {arg!r} is not a dict")
    return value


def _server_arg(existing: str | None, sources: list[str], subdomain_host: str) -> str:
    settings = _parse_server_arg(existing) if existing else {}
    headers = settings.get("headers", {})
    check_origins(
        frame_ancestors(fold_csp(headers)[1]) if isinstance(headers, dict) else [],
        subdomain_host=subdomain_host,
        where=f"already in the spawner's argument {existing!r}",
    )
    return SERVER_SETTINGS_ARG + repr(server_settings(settings, sources))


def _with_server_settings(c: Config, name: str, sources: list[str], *, subdomain_host: str) -> Any:
    """A function that sets the servers' argument in ``c[name].args``, checked now.

    A list is replaced by a new one. A lazy value (``c.Spawner.args.append(...)`` so
    far, or nothing) stays lazy, so that a file loaded with ``load_subconfig`` adds to
    the parent config's list instead of replacing it.
    """
    value = _section(c, name).get("args")
    if isinstance(value, list | tuple):
        items = list(value)
        index = _last_server_arg(items)
        arg = _server_arg(items[index] if index is not None else None, sources, subdomain_host)

        def assign() -> None:
            if index is None:
                items.append(arg)
            else:
                items[index] = arg
            c[name]["args"] = items

        return assign
    if value is None:
        arg = _server_arg(None, sources, subdomain_host)
        return lambda: c[name].args.append(arg)
    lazy = value
    if not isinstance(lazy, LazyConfigValue):
        raise EmbeddingConfigError(f"the spawner's args are {value!r}, not a list")
    pending = lazy.to_dict()
    for items in (pending.get("prepend", []), pending.get("extend", [])):
        index = _last_server_arg(items)
        if index is not None:
            arg = _server_arg(items[index], sources, subdomain_host)
            return lambda: items.__setitem__(index, arg)
    arg = _server_arg(None, sources, subdomain_host)
    return lambda: lazy.append(arg)


def _last_server_arg(items: list[Any]) -> int | None:
    found = [i for i, item in enumerate(items) if str(item).startswith(SERVER_SETTINGS_ARG)]
    return found[-1] if found else None
