"""The launch config traits shared by both spawners, and their validation.

Admins write environments, sizes and volumes as plain data, in ``jupyterhub_config.py``
or in a YAML file. :func:`load_launch_config` validates them once per distinct config
(the hub builds a spawner per server) and :func:`check_hub_config` lets a config file
fail the hub's start-up on a bad entry, naming the key, instead of the first spawn. On
Kubernetes it also reads the KubeSpawner settings the Zero to JupyterHub chart makes
(init containers, volumes and their mounts), which would otherwise fail every spawn.
"""

from __future__ import annotations

import copy
import difflib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from traitlets import Bool, Dict, Float, List, TraitType, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import LazyConfigValue

from eohub.domain.launch.config import (
    Backend,
    LaunchConfig,
    LaunchConfigError,
    parse_launch_config,
)
from eohub.domain.launch.kube_storage import (
    entries,
    home_storage,
    mount_conflicts,
    normal_path,
    privileged_init_containers,
)
from eohub.domain.launch.volumes import DEFAULT_CLAIM
from eohub.logs import get_logger
from eohub.spawner.setting_values import check_setting_values

log = get_logger(__name__)

FILE_KEYS = ("environments", "sizes", "volumes", "charge_groups", "session_limits")
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
        ``node_selector``, ``tolerations``, ``idle_timeout`` and ``max_duration``
        (session limits, as in ``session_limits``; 0: no limit) with ``group_limits``
        (per group charged: ``{climate: {max_duration: 2d}}``), ``pass_access_token``
        (give the server the user's OIDC access token) and ``default``. See the how-tos
        "Define environments, sizes and volumes" and "Limit session length and idle
        time".
        """,
    ).tag(config=True)
    session_limits = Dict(
        help="""Hub-wide session limits, which eohub's accounting service enforces on
        every backend: ``idle_timeout`` (stop a server idle this long, by the hub's
        last activity) and ``max_duration`` (stop a server this long after it
        started), with per-group overrides under ``groups``. A duration is seconds
        or a number with a lower-case unit: ``90s``, ``30m``, ``2h``, ``7d`` (at most
        366 days; ``6M`` is refused, not read as minutes or months); ``0`` or ``none``
        means no limit. For example::

            c.QuotaKubeSpawner.session_limits = {
                "idle_timeout": "2h",
                "max_duration": "24h",
                "groups": {"climate": {"max_duration": "3d"}, "staff": {"idle_timeout": 0}},
            }

        For each key, the most specific value wins: an environment's (or profile's)
        ``group_limits`` for the group charged, then its own ``idle_timeout`` /
        ``max_duration``, then ``groups`` here, then the defaults here. Empty: no
        limits unless an environment sets them.
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
        ``claim_name``, ``sub_path`` and paths may use ``{username}`` and ``{group}``
        (the group charged). The local backend supports ``workspace`` (with
        ``local_path``) and ``host_path``. With the Zero to JupyterHub chart's home
        storage, a ``workspace`` at the same mount path is the chart's claim.
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
    charged_group_must_grant = Bool(
        True,
        help="""Which group may pay for what. True (the default): the group charged must
        itself grant what the launch uses: an environment or profile whose
        ``allowed_groups`` name it (or that has none, or whose ``allowed_users`` name the
        user), and volumes whose ``allowed_groups`` name it; the form offers only those
        groups, and a spawn that charges another is refused with a 400. False (the
        permissive rule): a user may run whatever any of their groups grants, mount
        any volume any of their groups may mount (``{group}`` paths then name the group
        charged even when it is not allowed on the volume), and charge any group they
        may charge.""",
    ).tag(config=True)
    launch_config_file = Unicode(
        "",
        help="""A YAML file with any of the keys ``environments``, ``sizes``, ``volumes``,
        ``charge_groups`` and ``session_limits``. A trait set in the config replaces the
        file's key.""",
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
            ("session_limits", "session_limits"),
        ):
            if getattr(self, trait) or key not in data:
                data[key] = getattr(self, trait)
        return load_launch_config(
            self.backend, data, self.budget_min_hours, must_grant=self.charged_group_must_grant
        )


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
    backend: Backend,
    data: Mapping[str, Any],
    min_hours: float = 1.0,
    *,
    must_grant: bool = True,
) -> LaunchConfig:
    """Parse ``data`` once per distinct content; the hub asks for it on every spawn.

    ``must_grant`` is ``charged_group_must_grant``: whether the group charged must grant
    what it pays for."""
    key = json.dumps([backend, data, min_hours, must_grant], sort_keys=True, default=str)
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
        charged_group_must_grant=must_grant,
        session_limits=data.get("session_limits"),
    )
    with _cache_lock:
        _cache[key] = config
    return config


def check_hub_config(config: Any) -> LaunchConfig | None:
    """Validate the launch config of the hub's spawner class, as ``config`` sets it.

    Does nothing (returns None) when the spawner is not an eohub spawner. Logs one
    warning per setting the spawner class does not have (a typo), and raises
    LaunchConfigError naming the bad key, which stops the hub's start-up: a bad entry
    of the launch config, or an eohub setting of the wrong type or out of bounds.
    """
    spawner_class = _spawner_class(config.JupyterHub.get("spawner_class", None))
    if spawner_class is None:
        return None
    # A spawner cannot be built outside a running hub; its settings can, read from the
    # sections the spawner would read, base classes first, as traitlets does.
    values, sources = spawner_settings(config, spawner_class)
    warn_unknown_settings(config, spawner_class)
    check_setting_values(spawner_class, values, sources)
    own = set(_settings_of(LaunchSettings))
    merged = Config({"LaunchSettings": {k: v for k, v in values.items() if k in own}})
    settings = LaunchSettings(config=merged)
    settings.backend = spawner_class.backend
    launch_config = settings.launch_config()
    if launch_config.backend == "kube":
        check_kube_settings(spawner_class, values, sources, launch_config)
        from eohub.spawner.profile_list import check_profile_list

        check_profile_list(spawner_class, values, launch_config.environments)
    if any(e.repository for e in launch_config.environments.values()):
        check_repo_settings(config, launch_config.backend)
    return launch_config


def _settings_of(cls: type[Configurable]) -> dict[str, TraitType[Any, Any]]:
    """The traits of ``cls`` and its bases that a config may set."""
    return {n: t for n, t in cls.class_traits().items() if t.metadata.get("config")}


def _sections(spawner_class: type) -> list[type]:
    # traitlets' Configurable.section_names, as classes.
    return [
        c
        for c in reversed(spawner_class.__mro__)
        if isinstance(c, type) and issubclass(c, Configurable)
    ]


def spawner_settings(
    config: Any, spawner_class: type[Configurable]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings a ``spawner_class`` object would load from ``config``.

    Returns the values by trait name (append/extend from ``c.X.y.append(...)`` applied to
    the trait's default) and, for each, the section that set it last.
    """
    merged = Config()
    sources: dict[str, str] = {}
    for cls in _sections(spawner_class):
        section = config.get(cls.__name__) if cls.__name__ in config else None
        if isinstance(section, Config):
            merged.merge(copy.deepcopy(section))  # merge may change what it is given
            sources.update((key, cls.__name__) for key in section)
    traits = _settings_of(spawner_class)
    values: dict[str, Any] = {}
    for key, value in merged.items():
        if key in traits and isinstance(value, LazyConfigValue):
            try:
                value = value.get_value(traits[key].default())
            except Exception:  # a default computed per object: what is seen is the change
                value = value.to_dict()
        values[key] = value
    return values, sources


def warn_unknown_settings(config: Any, spawner_class: type[Configurable]) -> None:
    """Log one warning per key of a spawner section that is not a setting of the class."""
    traits = sorted(_settings_of(spawner_class))
    for cls in _sections(spawner_class):
        section = config.get(cls.__name__) if cls.__name__ in config else None
        if not isinstance(section, Config):
            continue
        for key, value in section.items():
            # Capitalised keys and nested sections configure other classes.
            if key in traits or key[:1].isupper() or isinstance(value, Config):
                continue
            close = difflib.get_close_matches(key, traits, n=1)
            if close:
                log.warning(
                    "{section}.{key} is not a setting of {spawner} and is ignored;"
                    " did you mean {suggestion}?",
                    section=cls.__name__,
                    key=key,
                    spawner=spawner_class.__name__,
                    suggestion=close[0],
                )
            else:
                log.warning(
                    "{section}.{key} is not a setting of {spawner} and is ignored",
                    section=cls.__name__,
                    key=key,
                    spawner=spawner_class.__name__,
                )


def _api_shape(value: Any, model: str) -> Any:
    """A KubeSpawner list or dict trait's entries as the API sees them: camelCase keys.

    KubeSpawner accepts kubernetes models (the chart's init container is a V1Container)
    and dicts with snake_case top-level keys; it sends nested dicts as written.
    """
    from kubernetes_asyncio import client

    attribute_map: dict[str, str] = getattr(client, model).attribute_map

    def entry(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {attribute_map.get(k, k): _serialised(v) for k, v in item.items()}
        return _serialised(item)

    if isinstance(value, Mapping):
        return {k: entry(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [entry(v) for v in value]
    return value


def _serialised(value: Any) -> Any:
    # ApiClient.sanitize_for_serialization, which needs an event loop to construct.
    types = getattr(value, "openapi_types", None)
    names = getattr(value, "attribute_map", None)
    if isinstance(types, dict) and isinstance(names, dict):
        fields = ((names[a], getattr(value, a, None)) for a in types)
        return {k: _serialised(v) for k, v in fields if v is not None}
    if isinstance(value, Mapping):
        return {k: _serialised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_serialised(v) for v in value]
    return value


def check_kube_settings(
    spawner_class: type,
    values: Mapping[str, Any],
    sources: Mapping[str, str],
    launch_config: LaunchConfig,
) -> None:
    """Raise LaunchConfigError for KubeSpawner settings that would fail every spawn.

    Init containers that break the restricted Pod Security Standard (unless
    ``allow_unrestricted_pods``), and a mount path used twice. eohub's ``workspace``
    mounted where the chart's home claim is, is not a conflict: that claim is the
    workspace.
    """
    problems: list[tuple[str, str]] = []
    init = _api_shape(values.get("init_containers"), "V1Container")
    if not values.get("allow_unrestricted_pods", False):
        context = values.get("pod_security_context")
        found = privileged_init_containers(init, context if isinstance(context, Mapping) else None)
        where = f"{sources.get('init_containers', spawner_class.__name__)}.init_containers"
        problems += [(where, message) for message in found]
    volumes = _api_shape(values.get("volumes"), "V1Volume")
    mounts = _api_shape(values.get("volume_mounts"), "V1VolumeMount")
    home = home_storage(volumes, mounts, str(values.get("pvc_name_template") or ""))
    section = sources.get("volume_mounts", spawner_class.__name__)
    used = [
        (f"{section}.volume_mounts{where} ({mount.get('name')})", str(mount.get("mountPath")))
        for where, mount in entries(mounts)
    ]
    for volume in launch_config.volumes.values():
        is_home = home is not None and normal_path(volume.mount_path) == home.mount_path
        if not (is_home and volume.kind == "workspace"):
            used.append((f"launch_volumes.{volume.name}", volume.mount_path))
        elif volume.claim_name != DEFAULT_CLAIM:
            log.warning(
                "launch_volumes.{name}.claim_name {claim} is not used: the chart's home"
                " claim (KubeSpawner.pvc_name_template) is the workspace at {path}",
                name=volume.name,
                claim=volume.claim_name,
                path=volume.mount_path,
            )
    problems += [
        (
            f"{section}.volume_mounts",
            f"{conflict}; the API server refuses a pod that mounts two volumes at one path,"
            " so move one of them (for the chart: singleuser.storage.homeMountPath or"
            " singleuser.storage.extraVolumeMounts)",
        )
        for conflict in mount_conflicts(used)
    ]
    if problems:
        where, first = problems[0]
        also = "".join(f"; and {w}: {m}" for w, m in problems[1:])
        raise LaunchConfigError(where, first + also)


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
