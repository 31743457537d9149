"""allow_embedding: which origins it takes, what it refuses, and how it merges config.

Tables of origins (accepted, normalized; refused, with the reason); the hub's and the
servers' settings merged into a Zero to JupyterHub-like config (the chart's drop-ins run
with ``exec`` in one namespace) and into one loaded with ``load_subconfig``; calling it
twice; and drop-in 45 with and without ``$EOHUB_EMBED_ORIGINS``. The browser test
(tests/hub/test_embedding_browser.py) shows what the settings do in Chromium.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jupyterhub.app import JupyterHub
from traitlets.config import Config, LazyConfigValue, PyFileConfigLoader

from eohub.embedding import (
    CROSS_SITE_COOKIES,
    SERVER_SETTINGS_ARG,
    EmbeddingConfigError,
    allow_embedding,
    check_origin,
    split_origins,
    with_frame_ancestors,
)
from eohub.embedding_startup import check_started_hub
from tests.support.tools import DROPIN_DIR

DROPIN = DROPIN_DIR / "45-eohub-embedding.py"
PORTAL = "https://portal.example.org"
REPORT = "report-uri /hub/security/csp-report"

ACCEPTED = [
    ("https://portal.example.org", "https://portal.example.org"),
    ("https://portal.example.org/", "https://portal.example.org"),
    ("HTTPS://Portal.Example.ORG", "https://portal.example.org"),
    ("https://portal.example.org:443", "https://portal.example.org"),
    ("https://portal.example.org:8443", "https://portal.example.org:8443"),
    ("  https://portal.example.org  ", "https://portal.example.org"),
    ("https://*.example.org", "https://*.example.org"),
    ("https://*.physics.ac.uk", "https://*.physics.ac.uk"),
    ("https://portal.github.io", "https://portal.github.io"),
    ("https://xn--bcher-kva.example.org", "https://xn--bcher-kva.example.org"),
    ("https://192.0.2.10", "https://192.0.2.10"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://127.1.2.3", "http://127.1.2.3"),
    ("http://[::1]:8080", "http://[::1]:8080"),
]


@pytest.mark.parametrize(("origin", "source"), ACCEPTED)
def test_accepted_origins_are_normalized(origin: str, source: str) -> None:
    assert check_origin(origin) == source


# (origin, words of the reason, keyword arguments of check_origin)
SUB = {"subdomain_host": "https://hub.example.org"}
REFUSED: list[tuple[str, str, dict[str, str]]] = [
    ("*", "clickjacking", {}),
    ("https://*", "clickjacking", {}),
    ("https:", "clickjacking", {}),
    ("'self'", "share one origin", {}),
    ("self", "share one origin", {}),
    ("'none'", "only 'self' is accepted", {}),
    ("'unsafe-inline'", "only 'self' is accepted", {}),
    ("portal.example.org", "give scheme://host[:port]", {}),
    ("http://portal.example.org", "use https", {}),
    ("http://10.0.0.5:8080", "use https", {}),
    ("ftp://portal.example.org", "use https", {}),
    ("data:", "give scheme://host[:port]", {}),
    ("https://portal.example.org/embed", "no path", {}),
    ("https://portal.example.org?x=1", "no path", {}),
    ("https://portal.example.org#top", "no path", {}),
    ("https://portal.example.org:*", "port must be a number", {}),
    ("https://portal.example.org:99999", "port must be a number", {}),
    ("https://*.org", "never a whole top-level domain", {}),
    ("https://portal.*.org", "not a host name", {}),
    # Anyone can get a host under these: strangers could frame the hub.
    ("https://*.ac.uk", "shared suffix", {}),
    ("https://*.co.uk", "shared suffix", {}),
    ("https://*.github.io", "shared suffix", {}),
    ("https://portal.example.org:0", "port 0", {}),
    ("https://bücher.example.org", "'xn--bcher-kva.example.org'", {}),
    ("https://por_tal.example.org", "not a host name", {}),
    ("https://ada:secret@portal.example.org", "user name or password", {}),
    # The hub's own origin on a shared origin is 'self' by another name.
    ("https://hub.example.org", "hub's own origin", {"hub_url": "https://hub.example.org/"}),
    ("https://*.example.org", "hub's own origin", {"hub_url": "https://hub.example.org"}),
    # With subdomain_host, the users' servers live on its subdomains.
    ("https://alice.hub.example.org", "covers the users' servers", SUB),
    ("https://*.example.org", "covers the users' servers", {"subdomain_host": "hub.example.org"}),
    ("https://*.hub.example.org", "covers the users' servers", SUB),
]


@pytest.mark.parametrize(
    ("origin", "reason", "where"), REFUSED, ids=[f"{o}-{sorted(w)}" for o, _, w in REFUSED]
)
def test_refused_origins_say_why(origin: str, reason: str, where: dict[str, str]) -> None:
    with pytest.raises(EmbeddingConfigError) as refused:
        check_origin(origin, **where)
    assert reason in str(refused.value)
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("origin", "where"),
    [
        ("'self'", {"subdomain_host": "https://hub.example.org"}),
        # The hub itself, where the users' servers are elsewhere.
        ("https://hub.example.org", {"subdomain_host": "https://hub.example.org"}),
        # Another port of the hub's host is another origin.
        ("http://127.0.0.1:9000", {"hub_url": "http://127.0.0.1:8000"}),
        ("https://portal.example.org", {"hub_url": "https://hub.example.org"}),
    ],
)
def test_self_and_the_hub_are_accepted_only_apart_from_the_users(
    origin: str, where: dict[str, str]
) -> None:
    assert check_origin(origin, **where)


A, B = "https://a.example.org", "https://b.example.org"


@pytest.mark.parametrize(
    ("text", "origins"),
    [
        ("", []),
        ("  ", []),
        (A, [A]),
        (f"{A} {B}", [A, B]),
        (f"{A},{B}", [A, B]),
        (f" {A} ,\n {B}, ", [A, B]),
    ],
)
def test_the_environment_variable_takes_spaces_and_commas(text: str, origins: list[str]) -> None:
    assert split_origins(text) == origins


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("", f"frame-ancestors {PORTAL}"),
        ("frame-ancestors 'none'", f"frame-ancestors {PORTAL}"),
        (
            "default-src 'self'; frame-ancestors 'none'; report-uri /x",
            f"frame-ancestors {PORTAL}; default-src 'self'; report-uri /x",
        ),
        (
            "Frame-Ancestors 'none' ;  img-src data: ;",
            f"frame-ancestors {PORTAL}; img-src data:",
        ),
    ],
)
def test_a_policy_keeps_its_other_directives(policy: str, expected: str) -> None:
    assert with_frame_ancestors(policy, [PORTAL]) == expected


# -- the whole config -------------------------------------------------------------------


def hub_settings(config: Config) -> dict[str, Any]:
    value = config.JupyterHub.tornado_settings
    return value.get_value({}) if isinstance(value, LazyConfigValue) else dict(value)


def spawner_args(config: Config, section: str = "Spawner") -> list[str]:
    value = config[section].args
    return list(value.get_value([])) if isinstance(value, LazyConfigValue) else list(value)


def server_settings(args: list[str]) -> dict[str, Any]:
    found = [a for a in args if a.startswith(SERVER_SETTINGS_ARG)]
    assert len(found) == 1, args
    value = ast.literal_eval(found[0].removeprefix(SERVER_SETTINGS_ARG))
    assert isinstance(value, dict)
    return value


def test_a_bare_config_gets_the_policy_and_the_cookies() -> None:
    config = Config()
    allow_embedding(config, [PORTAL, "http://localhost:8080"])
    assert hub_settings(config) == {
        "headers": {
            "Content-Security-Policy": f"frame-ancestors {PORTAL} http://localhost:8080; {REPORT}"
        },
        "cookie_options": CROSS_SITE_COOKIES,
        "xsrf_cookie_kwargs": CROSS_SITE_COOKIES,
    }
    assert server_settings(spawner_args(config)) == {
        "headers": {"Content-Security-Policy": f"frame-ancestors {PORTAL} http://localhost:8080"},
        "xsrf_cookie_kwargs": CROSS_SITE_COOKIES,
    }


#: A site's values as the Zero to JupyterHub chart leaves them (``hub.config`` passes
#: them through) before the drop-ins run.
Z2JH_LIKE = """
c.JupyterHub.base_url = "/jupyter/"
c.JupyterHub.tornado_settings = {
    "slow_spawn_timeout": 0,
    "headers": {
        "X-Site": "kept",
        "content-security-policy": "frame-ancestors 'none'; img-src 'self' data:",
    },
    "cookie_options": {"expires_days": 1},
}
c.KubeSpawner.args = [
    "--debug",
    "--ServerApp.tornado_settings={'websocket_max_message_size': 1073741824,"
    " 'headers': {'content-security-policy': \\"img-src 'self'\\"}}",
]
c.Spawner.args.append("--allow-root")
"""


def run_like_the_chart(before: str, after: str = "") -> Config:
    config = Config()
    namespace: dict[str, Any] = {"c": config, "get_config": lambda: config}
    exec(compile(textwrap.dedent(before), "before.py", "exec"), namespace)  # noqa: S102
    exec(compile(DROPIN.read_text(), DROPIN.name, "exec"), namespace)  # noqa: S102
    exec(compile(textwrap.dedent(after), "after.py", "exec"), namespace)  # noqa: S102
    return config


def test_a_z2jh_like_config_keeps_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_EMBED_ORIGINS", f"{PORTAL}, http://localhost:8080")
    config = run_like_the_chart(Z2JH_LIKE)
    sources = f"{PORTAL} http://localhost:8080"
    assert hub_settings(config) == {
        "slow_spawn_timeout": 0,
        "headers": {
            "X-Site": "kept",
            # The canonical name (the site's spelling folded in); its other directive;
            # the hub's base_url.
            "Content-Security-Policy": (
                f"frame-ancestors {sources}; img-src 'self' data:;"
                " report-uri /jupyter/hub/security/csp-report"
            ),
        },
        "cookie_options": {"expires_days": 1, **CROSS_SITE_COOKIES},
        "xsrf_cookie_kwargs": CROSS_SITE_COOKIES,
    }
    # KubeSpawner's own args hide Spawner's: both get the servers' settings, merged.
    kube = spawner_args(config, "KubeSpawner")
    assert kube[0] == "--debug"
    assert server_settings(kube) == {
        "websocket_max_message_size": 1073741824,
        # Only the canonical name: jupyterhub-singleuser adds its 'none' under it
        # otherwise, and jupyter_server sends that one.
        "headers": {"Content-Security-Policy": f"frame-ancestors {sources}; img-src 'self'"},
        "xsrf_cookie_kwargs": CROSS_SITE_COOKIES,
    }
    plain = spawner_args(config)
    assert plain[0] == "--allow-root"
    assert server_settings(plain)["headers"] == {
        "Content-Security-Policy": f"frame-ancestors {sources}"
    }


def test_twice_changes_nothing_and_a_new_origin_is_added() -> None:
    config = Config()
    config.Spawner.args = ["--debug"]
    allow_embedding(config, [PORTAL])
    first = (hub_settings(config), spawner_args(config))
    allow_embedding(config, [PORTAL, "https://portal.example.org/"])
    assert (hub_settings(config), spawner_args(config)) == first
    allow_embedding(config, ["https://second.example.org"])
    policy = hub_settings(config)["headers"]["Content-Security-Policy"]
    assert policy == f"frame-ancestors {PORTAL} https://second.example.org; {REPORT}"
    args = spawner_args(config)
    assert args[0] == "--debug"
    assert server_settings(args)["headers"]["Content-Security-Policy"] == (
        f"frame-ancestors {PORTAL} https://second.example.org"
    )


@pytest.mark.parametrize(
    ("before", "reason"),
    [
        ("", "clickjacking"),
        (
            'c.JupyterHub.tornado_settings = {"headers": '
            '{"Content-Security-Policy": "frame-ancestors *"}}',
            "already in c.JupyterHub.tornado_settings",
        ),
        (
            "c.Spawner.args = [\"--ServerApp.tornado_settings={'headers': "
            "{'Content-Security-Policy': \\\"frame-ancestors 'self'\\\"}}\"]",
            "already in the spawner's argument",
        ),
        ('c.Spawner.args = ["--ServerApp.tornado_settings={oops"]', "not a Python dict"),
    ],
)
def test_a_refusal_changes_nothing(before: str, reason: str) -> None:
    config = Config()
    exec(compile(before, "before.py", "exec"), {"c": config})  # noqa: S102
    snapshot = repr(config)
    origins = ["*"] if not before else [PORTAL]
    with pytest.raises(EmbeddingConfigError) as refused:
        allow_embedding(config, origins)
    assert reason in str(refused.value)
    assert repr(config) == snapshot


def test_no_origin_is_a_mistake() -> None:
    with pytest.raises(EmbeddingConfigError, match="no origin given"):
        allow_embedding(Config(), [])


def test_self_is_accepted_with_subdomain_host() -> None:
    config = Config()
    config.JupyterHub.subdomain_host = "https://hub.example.org"
    allow_embedding(config, ["'self'", PORTAL])
    policy = hub_settings(config)["headers"]["Content-Security-Policy"]
    assert policy == f"frame-ancestors 'self' {PORTAL}; {REPORT}"


def test_the_dropin_does_nothing_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EOHUB_EMBED_ORIGINS", raising=False)
    assert run_like_the_chart("") == Config()
    monkeypatch.setenv("EOHUB_EMBED_ORIGINS", " , ")
    assert run_like_the_chart("") == Config()


def test_the_dropin_refuses_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_EMBED_ORIGINS", "'self'")
    with pytest.raises(EmbeddingConfigError, match="subdomain_host is not set"):
        run_like_the_chart("")


def test_load_subconfig_adds_to_the_parents_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test hubs and the how-to load the drop-ins this way; the site's file sets
    # its args before and after, and JupyterHub reads the result.
    monkeypatch.setenv("EOHUB_EMBED_ORIGINS", PORTAL)
    (tmp_path / "jupyterhub_config.py").write_text(
        'c.Spawner.args = ["--debug"]\n'
        f"load_subconfig({str(DROPIN)!r})  # noqa: F821\n"
        'c.Spawner.args.append("--allow-root")\n'
    )
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(tmp_path)).load_config()
    hub = JupyterHub(config=config)
    assert hub.tornado_settings["headers"]["Content-Security-Policy"] == (
        f"frame-ancestors {PORTAL}; {REPORT}"
    )
    assert hub.tornado_settings["cookie_options"] == CROSS_SITE_COOKIES
    args = spawner_args(config)
    assert args[0] == "--debug"
    assert args[-1] == "--allow-root"
    assert server_settings(args)["headers"]["Content-Security-Policy"] == (
        f"frame-ancestors {PORTAL}"
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"content-security-policy": "img-src data:"}, f"frame-ancestors {PORTAL}; img-src data:"),
        (
            {
                "CONTENT-SECURITY-POLICY": "frame-ancestors https://a.example.org; img-src data:",
                "Content-Security-Policy": "frame-ancestors 'none'; img-src 'self'",
            },
            # The canonical spelling's directives first; every spelling's ancestors.
            f"frame-ancestors https://a.example.org {PORTAL}; img-src 'self'",
        ),
    ],
)
def test_the_servers_get_only_the_canonical_header_name(
    headers: dict[str, str], expected: str
) -> None:
    config = Config()
    quoted = repr({"headers": {**headers, "X-Other": "kept"}})
    config.Spawner.args = [SERVER_SETTINGS_ARG + quoted]
    allow_embedding(config, [PORTAL])
    assert server_settings(spawner_args(config))["headers"] == {
        "X-Other": "kept",
        "Content-Security-Policy": expected,
    }


@pytest.mark.parametrize(
    ("origin", "urls", "known"),
    [
        # Zero to JupyterHub: no public_url, the proxy binds every interface.
        (PORTAL, {"bind_url": "http://:8000"}, False),
        ("http://127.0.0.1:8000", {"bind_url": "http://0.0.0.0:8000/"}, False),
        (PORTAL, {"public_url": "https://hub.example.org/"}, True),
        ("https://hub.example.org", {"subdomain_host": "https://hub.example.org"}, True),
    ],
)
def test_the_started_hub_accepts_other_origins(
    origin: str, urls: dict[str, str], known: bool
) -> None:
    settings = {"headers": {"Content-Security-Policy": f"frame-ancestors {origin}"}}
    where = {"subdomain_host": "", "public_url": "", "bind_url": "http://:8000"} | urls
    assert check_started_hub(settings, **where) is known


@pytest.mark.parametrize(
    ("origin", "urls", "named"),
    [
        # A config that set neither before the drop-in: only the started hub knows.
        (
            "https://hub.example.org",
            {"public_url": "https://hub.example.org/jupyter/"},
            "public_url",
        ),
        ("https://*.example.org", {"public_url": "https://hub.example.org/"}, "public_url"),
        ("http://127.0.0.1:8000", {"bind_url": "http://127.0.0.1:8000/"}, "bind_url"),
        (
            "https://alice.hub.example.org",
            {"subdomain_host": "https://hub.example.org"},
            "covers the users' servers",
        ),
    ],
)
def test_the_started_hub_refuses_its_own_origin(
    origin: str, urls: dict[str, str], named: str
) -> None:
    settings = {"headers": {"Content-Security-Policy": f"frame-ancestors {PORTAL} {origin}"}}
    where = {"subdomain_host": "", "public_url": "", "bind_url": "http://:8000"} | urls
    with pytest.raises(EmbeddingConfigError) as refused:
        check_started_hub(settings, **where)
    assert named in str(refused.value)


def test_the_started_hub_folds_a_spelling_it_could_not_see_before() -> None:
    # A parent config's lower-case header, merged with the drop-in's canonical one.
    settings: dict[str, Any] = {
        "headers": {
            "content-security-policy": "frame-ancestors 'none'; img-src data:",
            "Content-Security-Policy": f"frame-ancestors {PORTAL}; {REPORT}",
            "X-Site": "kept",
        }
    }
    check_started_hub(settings, subdomain_host="", public_url="", bind_url="http://:8000")
    assert settings["headers"] == {
        "X-Site": "kept",
        "Content-Security-Policy": f"frame-ancestors {PORTAL}; {REPORT}; img-src data:",
    }
