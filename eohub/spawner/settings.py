"""The launch config traits shared by both spawners, and their validation.

Admins write environments, sizes and volumes as plain data, in ``jupyterhub_config.py``
or in a YAML file. :func:`load_launch_config` validates them once per distinct config
(the hub builds a spawner per server) and :func:`check_hub_config` lets a config file
fail the hub's start-up on a bad entry, naming the key, instead of the first spawn.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from traitlets import Dict, Float, List, Unicode
from traitlets.config import Config, Configurable

from eohub.domain.launch.config import (
    Backend,
    LaunchConfig,
    LaunchConfigError,
    parse_launch_config,
)

FILE_KEYS = ("environments", "sizes", "volumes", "charge_groups")
# The names setup.cfg registers under jupyterhub.spawners.
ENTRY_POINTS = {
    "eohub-kube": "eohub.spawner.kube.QuotaKubeSpawner",
    "eohub-local": "eohub.spawner.local.QuotaLocalSpawner",
}


class LaunchSettings(Configurable):
    """The traits that describe what can be launched; mixed into both spawners."""

    launch_environments = Dict(
        help="""Environments (profiles) users may launch, by name.

        Each is a dict: ``display_name``, ``description``, ``image`` (Kubernetes) or
        ``command`` (local), ``env``, ``default_urlpath`` (``/lab``, ``/vscode``,
        ``/rstudio``), ``allowed_groups`` and ``allowed_users`` (empty: everyone),
        ``sizes`` (names from ``launch_sizes``; empty: all), ``default_size``, ``gpu``,
        ``node_selector``, ``tolerations``, ``max_duration`` (seconds),
        ``pass_access_token`` (give the server the user's OIDC access token) and
        ``default``. See the how-to "Define environments, sizes and volumes".
        """,
    ).tag(config=True)
    launch_sizes = Dict(
        help="""Server sizes, by name: ``cpu`` and ``memory`` (guaranteed, and charged),
        ``cpu_limit`` and ``memory_limit`` (optional bursts), ``gpus``,
        ``display_name`` and ``description``. Memory is bytes or a string like "4G".
        """,
    ).tag(config=True)
    launch_volumes = Dict(
        help="""Volumes, by name. ``kind`` is ``workspace`` (a claim per user, created
        on first use), ``pvc`` (an existing claim), ``nfs`` or ``host_path``;
        ``mount_path``, ``sub_path``, ``read_only``, ``allowed_groups`` (empty:
        everyone) and ``optional`` (False: always mounted; True: the user ticks it).
        The local backend supports ``workspace`` (with ``local_path``) and
        ``host_path``.
        """,
    ).tag(config=True)
    charge_groups = List(
        Unicode(),
        help="""The groups a server may be charged to. Empty: any group of the user.
        A user in several of them chooses one on the launch form.""",
    ).tag(config=True)
    budget_min_hours = Float(
        1.0,
        help="""A size is offered while the budget left of the group buys at least this
        many hours of it; smaller sizes stay on offer as the budget runs down.""",
    ).tag(config=True)
    launch_config_file = Unicode(
        "",
        help="""A YAML file with any of the keys ``environments``, ``sizes``, ``volumes``
        and ``charge_groups``. A trait set in the config replaces the file's key.""",
    ).tag(config=True)

    backend: Backend = "kube"

    def launch_config(self) -> LaunchConfig:
        """The validated launch config; raises LaunchConfigError naming the bad key."""
        data = _file_data(self.launch_config_file)
        for key, trait in (
            ("environments", "launch_environments"),
            ("sizes", "launch_sizes"),
            ("volumes", "launch_volumes"),
            ("charge_groups", "charge_groups"),
        ):
            if getattr(self, trait) or key not in data:
                data[key] = getattr(self, trait)
        return load_launch_config(self.backend, data, self.budget_min_hours)


def _file_data(path: str) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise LaunchConfigError("launch_config_file", f"cannot read {path}: {e}") from None
    except yaml.YAMLError as e:
        raise LaunchConfigError("launch_config_file", f"{path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LaunchConfigError("launch_config_file", f"{path} must hold a mapping")
    unknown = sorted(set(map(str, data)) - set(FILE_KEYS))
    if unknown:
        raise LaunchConfigError(
            "launch_config_file", f"{path}: unknown keys {unknown}; use {list(FILE_KEYS)}"
        )
    return dict(data)


_cache: dict[str, LaunchConfig] = {}
_cache_lock = threading.Lock()


def load_launch_config(
    backend: Backend, data: Mapping[str, Any], min_hours: float = 1.0
) -> LaunchConfig:
    """Parse ``data`` once per distinct content; the hub asks for it on every spawn."""
    key = json.dumps([backend, data, min_hours], sort_keys=True, default=str)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    config = parse_launch_config(
        data.get("environments") or {},
        data.get("sizes") or {},
        data.get("volumes") or {},
        backend=backend,
        charge_groups=data.get("charge_groups") or (),
        min_hours=min_hours,
    )
    with _cache_lock:
        _cache[key] = config
    return config


def check_hub_config(config: Any) -> LaunchConfig | None:
    """Validate the launch config of the hub's spawner class, as ``config`` sets it.

    Does nothing (returns None) when the spawner is not an eohub spawner. Raises
    LaunchConfigError naming the bad key, which stops the hub's start-up.
    """
    spawner_class = _spawner_class(config.JupyterHub.get("spawner_class", None))
    if spawner_class is None:
        return None
    # A spawner cannot be built outside a running hub; the settings alone can. They
    # read the sections the spawner would, base classes first.
    merged = Config()
    for cls in reversed(spawner_class.mro()):
        if isinstance(cls, type) and issubclass(cls, LaunchSettings) and cls.__name__ in config:
            merged.LaunchSettings.merge(config[cls.__name__])
    settings = LaunchSettings(config=merged)
    settings.backend = spawner_class.backend
    launch_config = settings.launch_config()
    if any(e.repository for e in launch_config.environments.values()):
        check_repo_settings(config, launch_config.backend)
    return launch_config


def check_repo_settings(config: Any, backend: Backend) -> None:
    """Raise LaunchConfigError naming the ``RepoLaunches`` setting that is wrong."""
    from eohub.domain.repos.specs import RepoError
    from eohub.spawner.repo_launches import RepoLaunches

    repo_launches = RepoLaunches(config=config)
    try:
        repo_launches.rules()
    except RepoError as e:
        key, message = next(iter(e.errors.items()))
        raise LaunchConfigError(f"RepoLaunches.{key}", message) from None
    if backend == "kube" and not repo_launches.image_prefix:
        raise LaunchConfigError(
            "RepoLaunches.image_prefix",
            "is required on Kubernetes for environments with repository: true "
            "(the registry and name prefix of built images, as BinderHub's image_prefix)",
        )


def _spawner_class(value: Any) -> type[LaunchSettings] | None:
    if isinstance(value, type):
        return value if issubclass(value, LaunchSettings) else None
    if not isinstance(value, str) or not value:
        return None
    value = ENTRY_POINTS.get(value, value)
    module, _, name = value.rpartition(".")
    if not module.startswith("eohub."):
        return None
    import importlib

    found = getattr(importlib.import_module(module), name, None)
    return found if isinstance(found, type) and issubclass(found, LaunchSettings) else None
