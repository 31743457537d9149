"""The servers' embedding setting reaches the pod QuotaKubeSpawner builds, or is dropped
where the how-to says.

The hub's config is built the way Zero to JupyterHub's hub pod builds it
(:func:`tests.support.z2jh.hub_config_from_values`: the chart's values, drop-in 45 mounted
with ``hub.extraFiles`` and reading ``$EOHUB_EMBED_ORIGINS``, then ``hub.extraConfig``),
and handed to a QuotaKubeSpawner as the hub hands it its config. The pod manifest is
KubeSpawner's own (``get_pod_manifest``; no API is needed to build it): the
notebook container's ``args`` are the command line ``jupyterhub-singleuser`` gets.

Where the argument is lost (``singleuser.cmd: null``, a profile's ``kubespawner_override``
of ``args``, ``c.KubeSpawner.args`` assigned after the drop-ins) the tests pin it down,
because the how-to names exactly these cases; a profile overriding ``cmd`` keeps it.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eohub.embedding import SERVER_SETTINGS_ARG
from tests.support.kube_api import fake_kubeconfig, validate
from tests.support.kube_spawners import NO_API, make_spawner, serialise
from tests.support.tools import DROPIN_DIR
from tests.support.z2jh import CHART_DEFAULTS, CONFIG_D, hub_config_from_values

PORTAL = "https://portal.example.org"
DROPIN = DROPIN_DIR / "45-eohub-embedding.py"
#: A profile list as an admin writes it; eohub's own launch environments are off.
PROFILES: list[dict[str, Any]] = [
    {"display_name": "Default", "slug": "default", "default": True},
    {
        "display_name": "Start script",
        "slug": "start-script",
        "kubespawner_override": {"cmd": ["start-notebook.py"]},
    },
    {
        "display_name": "Debug",
        "slug": "debug",
        "kubespawner_override": {"args": ["--debug"]},
    },
]


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_kubeconfig(tmp_path_factory.mktemp("kube"), NO_API) as path:
        yield path


@pytest.fixture(autouse=True)
def origins(monkeypatch: pytest.MonkeyPatch) -> None:
    # hub.extraEnv, as the how-to sets it.
    monkeypatch.setenv("EOHUB_EMBED_ORIGINS", PORTAL)


def chart_config(singleuser: dict[str, Any] | None = None, extra_config: str = "") -> Any:
    values: dict[str, Any] = {
        "singleuser": {
            "image": {"name": "quay.io/jupyter/base-notebook", "tag": "2026-01-05"},
            # eohub's pods meet the restricted standard, which the privileged iptables
            # init container breaks (see the Zero to JupyterHub how-to).
            "cloudMetadata": {"blockWithIptables": False},
            **(singleuser or {}),
        },
        "hub": {
            "config": {
                "KubeSpawner": {
                    "args": [
                        "--ServerApp.tornado_settings="
                        "{'headers': {'content-security-policy': \"img-src 'self' data:\"}}"
                    ]
                }
            },
            "extraFiles": {
                "eohub-45-embedding": {
                    "mountPath": f"{CONFIG_D}/{DROPIN.name}",
                    "stringData": DROPIN.read_text(),
                }
            },
            "extraConfig": {"zz-site": extra_config} if extra_config else {},
        },
    }
    return hub_config_from_values(values, CHART_DEFAULTS)


async def notebook_args(config: Any, options: dict[str, Any] | None = None) -> list[str] | None:
    """The notebook container's ``args`` (command and arguments) in the pod built."""
    spawner = await make_spawner(
        "alice",
        {"eo-sci"},
        config=config,
        launch_environments={},
        launch_sizes={},
        launch_volumes={},
        profile_list=copy.deepcopy(PROFILES),
    )
    await spawner.authorize_launch(options or {})
    pod = serialise(spawner, await spawner.get_pod_manifest())
    validate(pod)
    args: list[str] | None = pod["spec"]["containers"][0].get("args")
    return args


def server_settings(args: list[str] | None) -> dict[str, Any] | None:
    found = [a for a in args or [] if a.startswith(SERVER_SETTINGS_ARG)]
    if not found:
        return None
    assert len(found) == 1, args
    value: dict[str, Any] = ast.literal_eval(found[0].removeprefix(SERVER_SETTINGS_ARG))
    return value


EXPECTED_HEADERS = {"Content-Security-Policy": f"frame-ancestors {PORTAL}; img-src 'self' data:"}


async def test_the_chart_default_command_carries_the_setting() -> None:
    args = await notebook_args(chart_config())
    assert args is not None
    assert args[0] == "jupyterhub-singleuser"  # singleuser.cmd, the chart's default
    settings = server_settings(args)
    assert settings is not None
    # hub.config's own argument, merged: one canonical header name.
    assert settings["headers"] == EXPECTED_HEADERS


async def test_a_profile_overriding_cmd_keeps_it() -> None:
    args = await notebook_args(chart_config(), {"profile": "start-script"})
    assert args is not None
    assert args[0] == "start-notebook.py"
    settings = server_settings(args)
    assert settings is not None
    assert settings["headers"] == EXPECTED_HEADERS


@pytest.mark.parametrize(
    ("singleuser", "extra_config", "options"),
    [
        # The image's own CMD runs: KubeSpawner drops every argument.
        ({"cmd": None}, "", {}),
        # The profile's args replace the admin's.
        ({}, "", {"profile": "debug"}),
        # hub.extraConfig runs after the drop-ins and replaces the list.
        ({}, 'c.KubeSpawner.args = ["--debug"]', {}),
    ],
    ids=["singleuser.cmd-null", "profile-args", "args-assigned-after"],
)
async def test_the_documented_cases_drop_it(
    singleuser: dict[str, Any], extra_config: str, options: dict[str, Any]
) -> None:
    args = await notebook_args(chart_config(singleuser, extra_config), options)
    assert server_settings(args) is None


async def test_calling_it_again_after_assigning_args_brings_it_back() -> None:
    # The how-to's remedy for args set in hub.extraConfig.
    extra = (
        'c.KubeSpawner.args = ["--debug"]\n'
        "from eohub.embedding import allow_embedding\n"
        f"allow_embedding(c, [{PORTAL!r}])\n"
    )
    args = await notebook_args(chart_config(extra_config=extra))
    assert args is not None
    assert "--debug" in args
    settings = server_settings(args)
    assert settings is not None
    assert settings["headers"] == {"Content-Security-Policy": f"frame-ancestors {PORTAL}"}
