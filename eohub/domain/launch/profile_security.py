"""Which ``kubespawner_override`` of a profile list breaks the restricted Pod Security Standard.

Overrides are the admin's, so QuotaKubeSpawner applies them; but a pod they make must
still meet the "restricted" standard unless the admin opts out. The spawner checks the
real pod at every spawn. :func:`override_violations` finds, at hub start-up, the
overrides that break it whatever else is chosen, and names each by its key path
(``profile_list[2].profile_options.image.choices.gpu.kubespawner_override.privileged``),
so that the hub does not start with a profile nobody can launch.

It builds the security-relevant part of the pod the way KubeSpawner's ``make_pod``
does (``uid``, ``gid``, ``privileged``, ``allow_privilege_escalation``, ``fs_gid``,
``supplemental_gids``, the two security contexts, ``extra_container_config``,
``extra_pod_config``, ``init_containers``, ``extra_containers``, ``volumes``) and asks
:func:`restricted_violations`. Callable values are left to the spawn-time check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from eohub.domain.launch.overrides import merged
from eohub.domain.launch.pod_security import restricted_violations
from eohub.domain.launch.profiles import Overrides, Profile, fill_unlisted

#: The traits that reach the pod's security-relevant fields.
SECURITY_TRAITS = frozenset(
    {
        "uid",
        "gid",
        "privileged",
        "allow_privilege_escalation",
        "fs_gid",
        "supplemental_gids",
        "container_security_context",
        "pod_security_context",
        "extra_container_config",
        "extra_pod_config",
        "init_containers",
        "extra_containers",
        "volumes",
    }
)
_SAMPLE = "sample"


def _camel(key: str) -> str:
    # KubeSpawner takes extra_*_config keys in either case; the manifest is camelCase.
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)


def _update(target: dict[str, Any], changes: object) -> None:
    if isinstance(changes, Mapping):
        target.update({_camel(str(k)): v for k, v in changes.items()})


def sketch_pod(traits: Mapping[str, Any]) -> dict[str, Any]:
    """The security-relevant part of the pod KubeSpawner makes from ``traits``."""
    container_context: dict[str, Any] = {}
    if traits.get("uid") is not None:
        container_context["runAsUser"] = traits["uid"]
    if traits.get("gid") is not None:
        container_context["runAsGroup"] = traits["gid"]
    if traits.get("privileged"):
        container_context["privileged"] = True
    if traits.get("allow_privilege_escalation") is not None:
        container_context["allowPrivilegeEscalation"] = traits["allow_privilege_escalation"]
    _update(container_context, traits.get("container_security_context"))
    pod_context: dict[str, Any] = {}
    if traits.get("fs_gid") is not None:
        pod_context["fsGroup"] = traits["fs_gid"]
    if traits.get("supplemental_gids"):
        pod_context["supplementalGroups"] = list(traits["supplemental_gids"])
    _update(pod_context, traits.get("pod_security_context"))
    container: dict[str, Any] = {"name": "notebook", "securityContext": container_context}
    _update(container, traits.get("extra_container_config"))
    spec: dict[str, Any] = {
        "securityContext": pod_context,
        "containers": [container, *_items(traits.get("extra_containers"))],
        "initContainers": _items(traits.get("init_containers")),
        "volumes": _items(traits.get("volumes")),
    }
    _update(spec, traits.get("extra_pod_config"))
    return {"spec": spec}


def _items(value: object) -> list[Any]:
    if isinstance(value, Mapping):  # KubeSpawner takes named entries as a dict too
        value = [value[k] for k in sorted(value)]
    if not isinstance(value, list | tuple):
        return []
    # KubeSpawner reads containers and volumes in either case (get_k8s_model).
    return [_camel_entry(item) for item in value]


def _camel_entry(item: object) -> object:
    if not isinstance(item, Mapping):
        return item
    entry = {_camel(str(k)): v for k, v in item.items()}
    context = entry.get("securityContext")
    if isinstance(context, Mapping):
        entry["securityContext"] = {_camel(str(k)): v for k, v in context.items()}
    return entry


def _new_problems(base: Mapping[str, Any], path: str, overrides: Overrides) -> Iterator[str]:
    before = set(restricted_violations(sketch_pod(base)))
    for key, value in overrides.items():
        if key not in SECURITY_TRAITS or callable(value):
            continue
        after = restricted_violations(sketch_pod(merged(base, {key: value})))
        new = [p for p in after if p not in before]
        if new:
            yield f"{path}.kubespawner_override.{key}: {'; '.join(new)}"


def override_violations(base: Mapping[str, Any], profiles: Sequence[Profile]) -> list[str]:
    """One message per override that makes the pod break the restricted standard.

    ``base`` holds the spawner's own values of :data:`SECURITY_TRAITS`. A profile's
    overrides are checked on ``base``; its options' on ``base`` with the profile's
    applied, as at a spawn.
    """
    problems: list[str] = []
    for profile in profiles:
        problems.extend(_new_problems(base, profile.path, profile.overrides))
        with_profile = merged(base, profile.overrides)
        for option in profile.options:
            for choice in option.choices:
                problems.extend(_new_problems(with_profile, choice.path, choice.overrides))
            unlisted = option.unlisted
            if unlisted is not None:
                filled = fill_unlisted(unlisted.overrides, _SAMPLE)
                problems.extend(_new_problems(with_profile, unlisted.path, filled))
    return problems


__all__ = ["SECURITY_TRAITS", "override_violations", "sketch_pod"]
