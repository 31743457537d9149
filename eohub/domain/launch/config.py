"""The launch config: environments, sizes and volumes, validated once at hub start-up.

Admins describe what can be launched as plain data. :func:`parse_launch_config` turns it
into frozen objects, or fails with a :class:`LaunchConfigError` whose message names the
offending key (``environments.pangeo.sizes[1]: unknown size 'huge'``), so a typo stops
the hub instead of surfacing as a ``KeyError`` in somebody's spawn. Every reference
between entries is checked here; later code can look names up without doubt.

Volumes live in :mod:`eohub.domain.launch.volumes`; what a given user may launch is
:mod:`eohub.domain.launch.policy`'s business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.resources import MAX_CPU, MAX_GPUS
from eohub.domain.fields import describe
from eohub.domain.identity.groups import valid_group_name
from eohub.domain.launch.fields import Entry, LaunchConfigError, check_name
from eohub.domain.launch.options import urlpath_problem
from eohub.domain.launch.session_limits import (
    NO_RULES,
    OWN_LIMIT_KEYS,
    LimitRules,
    PartialLimits,
    parse_limit_rules,
    parse_own_limits,
)
from eohub.domain.launch.volumes import Volume, parse_volumes

Backend = Literal["kube", "local"]
BACKENDS: tuple[Backend, ...] = ("kube", "local")
DEFAULT_URLPATH = "/lab"
# A container image reference, read with fullmatch: nothing may follow the tag or digest.
IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}", re.IGNORECASE)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Kubernetes label keys (optionally prefixed) and values.
LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_SIZE_KEYS = frozenset(
    {"display_name", "description", "cpu", "cpu_limit", "memory", "memory_limit", "gpus"}
)
_ENV_KEYS = frozenset(
    {
        "display_name",
        "description",
        "env",
        "default_urlpath",
        "allowed_groups",
        "allowed_users",
        "sizes",
        "default_size",
        "gpu",
        "node_selector",
        "tolerations",
        *OWN_LIMIT_KEYS,
        "pass_access_token",
        "default",
        "repository",
    }
)
_BACKEND_ENV_KEYS: dict[str, frozenset[str]] = {
    "kube": frozenset({"image"}),
    "local": frozenset({"command"}),
}


@dataclass(frozen=True)
class Size:
    """A server size: CPU and memory guaranteed (and charged), their limits, and GPUs."""

    name: str
    display_name: str
    cpu: float
    memory: int
    description: str = ""
    cpu_limit: float | None = None
    memory_limit: int | None = None
    gpus: int = 0

    @property
    def charged(self) -> Resources:
        """What a server of this size is charged for: the guarantees, not the limits."""
        return Resources.from_cpu(self.cpu, self.memory, self.gpus)


@dataclass(frozen=True)
class Environment:
    """An environment (a profile): what runs, where, and who may see it.

    ``sizes`` lists the sizes it offers, in the admin's order (all sizes compatible with
    its ``gpu`` setting when the admin listed none). ``image`` is set on Kubernetes,
    ``command`` (optional) on the local backend. Empty ``allowed_groups`` and
    ``allowed_users`` mean everyone may use it.

    ``repository`` makes it a launch from a git repository: the user names the
    repository and ref, and the image is the builder's image for the resolved commit
    (Kubernetes), or the commit is cloned into the workspace (local). So it has no
    ``image`` of its own, and who may build from repositories is its ``allowed_groups``.

    ``idle_timeout`` and ``max_duration`` are its own session limits in seconds (None:
    not set, the hub's ``session_limits`` apply; 0: no limit), ``group_limits`` its
    overrides per group charged. A launch's resolved limits are ``Launch.limits``
    (:mod:`eohub.domain.launch.session_limits`).
    """

    name: str
    display_name: str
    sizes: tuple[str, ...]
    description: str = ""
    image: str | None = None
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    default_urlpath: str = DEFAULT_URLPATH
    allowed_groups: frozenset[str] = frozenset()
    allowed_users: frozenset[str] = frozenset()
    default_size: str | None = None
    gpu: bool = False
    node_selector: Mapping[str, str] = field(default_factory=dict, hash=False)
    tolerations: tuple[Mapping[str, object], ...] = field(default=(), hash=False)
    max_duration: int | None = None
    pass_access_token: bool = False
    default: bool = False
    repository: bool = False
    idle_timeout: int | None = None
    group_limits: Mapping[str, PartialLimits] = field(default_factory=dict, hash=False)

    @property
    def own_limits(self) -> dict[str, int]:
        """The limits this environment sets itself (``0``: it lifts the hub's)."""
        given = {"idle_timeout": self.idle_timeout, "max_duration": self.max_duration}
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class LaunchConfig:
    """Everything that can be launched, for one backend ("kube" or "local").

    Attributes
    ----------
    charge_groups
        The groups a server may be charged to; empty means any group of the user.
    min_hours
        A size fits a budget when the budget left buys at least this many hours of it.
    charged_group_must_grant
        True (the default): the group charged must itself grant the environment and the
        volumes of a launch (:mod:`eohub.domain.launch.grants`); False: any group the
        user may charge pays for whatever any of their groups grants.
    limit_rules
        The hub-wide session limits and their per-group overrides (``session_limits``).
    """

    backend: Backend
    environments: Mapping[str, Environment] = field(default_factory=dict, hash=False)
    sizes: Mapping[str, Size] = field(default_factory=dict, hash=False)
    volumes: Mapping[str, Volume] = field(default_factory=dict, hash=False)
    charge_groups: frozenset[str] = frozenset()
    min_hours: Fraction = Fraction(1)
    charged_group_must_grant: bool = True
    limit_rules: LimitRules = NO_RULES

    @property
    def default_environment(self) -> Environment | None:
        return next((e for e in self.environments.values() if e.default), None)


def parse_size(name: object, data: object) -> Size:
    """Validate the size called ``name``: its guarantees are what a server is charged."""
    check_name(name, "sizes", "size")
    assert isinstance(name, str)
    entry = Entry(data, f"sizes.{name}", _SIZE_KEYS)
    cpu = entry.number("cpu", maximum=MAX_CPU)
    if cpu is None:
        entry.fail("cpu", "is required: the cores guaranteed (and charged), like 2 or 0.5")
    if Resources.from_cpu(cpu).millicores == 0:
        entry.fail("cpu", "must be at least 0.001 (one millicore)")
    memory = entry.byte_size("memory")
    if memory is None:
        entry.fail("memory", "is required: the memory guaranteed (and charged), like '4G'")
    cpu_limit = entry.number("cpu_limit", maximum=MAX_CPU)
    if cpu_limit is not None and cpu_limit < cpu:
        entry.fail("cpu_limit", f"must be at least cpu ({cpu:g})")
    memory_limit = entry.byte_size("memory_limit")
    if memory_limit is not None and memory_limit < memory:
        entry.fail("memory_limit", f"must be at least memory ({memory} bytes)")
    return Size(
        name=name,
        display_name=entry.text("display_name", name) or name,
        description=entry.description(),
        cpu=cpu,
        memory=memory,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
        gpus=entry.integer("gpus", minimum=0, maximum=MAX_GPUS) or 0,
    )


def _tolerations(entry: Entry) -> tuple[dict[str, object], ...]:
    raw = entry.data.get("tolerations")
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        entry.fail("tolerations", f"must be a list of tolerations, not {describe(raw)}")
    result: list[dict[str, object]] = []
    for i, item in enumerate(raw):
        t = Entry(item, f"{entry.path('tolerations')}[{i}]", TOLERATION_KEYS)
        key = t.text("key", pattern=LABEL_KEY)
        operator = t.text("operator", "Equal")
        if operator not in ("Equal", "Exists"):
            t.fail("operator", f"must be 'Equal' or 'Exists', not {operator!r}")
        value = "" if t.data.get("value") == "" else t.text("value", max_len=63)
        if operator == "Exists" and value is not None:
            t.fail("value", "must be left out when operator is 'Exists'")
        if operator == "Equal" and key is None:
            t.fail("key", "is required when operator is 'Equal'")
        effect = t.text("effect")
        if effect is not None and effect not in TOLERATION_EFFECTS:
            t.fail("effect", f"must be one of {', '.join(TOLERATION_EFFECTS)}")
        seconds = t.integer("tolerationSeconds", minimum=0, maximum=2**31 - 1)
        if seconds is not None and effect != "NoExecute":
            t.fail("tolerationSeconds", "applies only to effect 'NoExecute'")
        given: dict[str, object] = {"key": key, "operator": operator, "value": value}
        given |= {"effect": effect, "tolerationSeconds": seconds}
        result.append({k: v for k, v in given.items() if v is not None})
    return tuple(result)


def _env_sizes(entry: Entry, sizes: Mapping[str, Size], gpu: bool) -> tuple[str, ...]:
    listed = entry.strings("sizes")
    for i, name in enumerate(listed):
        where = f"{entry.path('sizes')}[{i}]"
        if name not in sizes:
            raise LaunchConfigError(where, f"unknown size {describe(name)}")
        if sizes[name].gpus and not gpu:
            raise LaunchConfigError(
                where, f"size {name!r} has GPUs; set gpu: true to offer it here"
            )
    if not listed:
        listed = tuple(n for n, s in sizes.items() if gpu or not s.gpus)
        if not listed:
            entry.fail(
                "sizes", "no size is available: define sizes (without GPUs unless gpu: true)"
            )
    return listed


def parse_environment(
    name: object, data: object, sizes: Mapping[str, Size], backend: Backend
) -> Environment:
    """Validate the environment called ``name`` against the already-parsed ``sizes``."""
    check_name(name, "environments", "environment")
    assert isinstance(name, str)
    other = _BACKEND_ENV_KEYS["local" if backend == "kube" else "kube"]
    if isinstance(data, Mapping) and (misplaced := sorted(other & set(data))):
        raise LaunchConfigError(
            f"environments.{name}.{misplaced[0]}", f"is not used by the {backend!r} backend"
        )
    entry = Entry(data, f"environments.{name}", _ENV_KEYS | _BACKEND_ENV_KEYS[backend])
    repository = entry.flag("repository", False)
    if repository and entry.has("image"):
        entry.fail("image", "is the builder's image for the repository; leave it out")
    image = entry.text("image", required=backend == "kube" and not repository, pattern=IMAGE)
    command = (entry.strings("command") or None) if backend == "local" else None
    urlpath = entry.text("default_urlpath", DEFAULT_URLPATH, max_len=1024) or DEFAULT_URLPATH
    if problem := urlpath_problem(urlpath):
        entry.fail("default_urlpath", f"{urlpath!r} {problem}")
    gpu = entry.flag("gpu", False)
    env_sizes = _env_sizes(entry, sizes, gpu)
    default_size = entry.text("default_size")
    if default_size is not None and default_size not in env_sizes:
        entry.fail("default_size", f"{default_size!r} is not among this environment's sizes")
    own_limits, group_limits = parse_own_limits(entry.data, entry.where)
    return Environment(
        name=name,
        display_name=entry.text("display_name", name) or name,
        description=entry.description(),
        image=image,
        command=command,
        env=entry.string_map("env", ENV_NAME, "environment variable name"),
        default_urlpath=urlpath,
        allowed_groups=entry.groups("allowed_groups"),
        allowed_users=frozenset(entry.strings("allowed_users")),
        sizes=env_sizes,
        default_size=default_size,
        gpu=gpu,
        node_selector=entry.string_map("node_selector", LABEL_KEY, "label key"),
        tolerations=_tolerations(entry),
        max_duration=own_limits.get("max_duration"),
        pass_access_token=entry.flag("pass_access_token", False),
        default=entry.flag("default", False),
        repository=repository,
        idle_timeout=own_limits.get("idle_timeout"),
        group_limits=group_limits,
    )


def _entries(value: object, key: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        raise LaunchConfigError(
            key, f"must be a mapping of names to settings, not {describe(value)}"
        )
    return value


def parse_launch_config(
    environments: Mapping[str, object],
    sizes: Mapping[str, object],
    volumes: Mapping[str, object],
    *,
    backend: Backend,
    charge_groups: Iterable[str] = (),
    min_hours: Fraction | float | int | str = 1,
    charged_group_must_grant: bool = True,
    session_limits: object = None,
) -> LaunchConfig:
    """Validate the admin's launch config; raise :class:`LaunchConfigError` naming the key.

    ``session_limits`` are the hub-wide limits (``idle_timeout``, ``max_duration``) and
    their per-group overrides (``groups``).
    """
    if backend not in BACKENDS:
        raise LaunchConfigError("backend", f"must be 'kube' or 'local', not {describe(backend)}")
    parsed_sizes = {str(n): parse_size(n, d) for n, d in _entries(sizes, "sizes").items()}
    parsed_envs: dict[str, Environment] = {}
    for name, data in _entries(environments, "environments").items():
        env = parse_environment(name, data, parsed_sizes, backend)
        default = next((e.name for e in parsed_envs.values() if e.default), None)
        if env.default and default is not None:
            raise LaunchConfigError(
                f"environments.{name}.default", f"environment {default!r} is already the default"
            )
        parsed_envs[env.name] = env
    parsed_volumes = parse_volumes(_entries(volumes, "volumes"), backend)
    groups = () if isinstance(charge_groups, str) else tuple(charge_groups)
    bad = [g for g in groups if not isinstance(g, str) or not valid_group_name(g)]
    if isinstance(charge_groups, str) or bad:
        raise LaunchConfigError("charge_groups", "must be a list of group names")
    try:
        if isinstance(min_hours, bool):
            raise TypeError
        hours = Fraction(min_hours)
    except (TypeError, ValueError, OverflowError):
        raise LaunchConfigError(
            "min_hours", f"must be a number, not {describe(min_hours)}"
        ) from None
    if hours < 0:
        raise LaunchConfigError("min_hours", "must not be negative")
    limit_rules = parse_limit_rules(session_limits, "session_limits")
    return LaunchConfig(
        backend=backend,
        environments=parsed_envs,
        sizes=parsed_sizes,
        volumes=parsed_volumes,
        charge_groups=frozenset(groups),
        min_hours=hours,
        charged_group_must_grant=bool(charged_group_must_grant),
        limit_rules=limit_rules,
    )


__all__ = [
    "BACKENDS",
    "DEFAULT_URLPATH",
    "Backend",
    "Environment",
    "LaunchConfig",
    "LaunchConfigError",
    "Size",
    "Volume",
    "parse_environment",
    "parse_launch_config",
    "parse_size",
]
