"""What one ``profile_list`` launch asks for, read from its overrides as launch config data.

Used by :mod:`eohub.domain.launch.profile_convert`. The overrides are applied as
KubeSpawner applies them (:func:`merge`); :func:`read_size` and :func:`read_placement`
then say the result in the launch config's words (a size; an environment's node
selector, tolerations and env), and report through ``warn(where, text)`` whatever
they cannot say, naming the key path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from eohub.domain.accounting.resources import MAX_CPU, MAX_GPUS, parse_bytes
from eohub.domain.launch.config import ENV_NAME, LABEL_KEY, TOLERATION_KEYS
from eohub.domain.launch.fields import MAX_TEXT
from eohub.domain.launch.overrides import merged
from eohub.domain.launch.profiles import Choice, Overrides

Warn = Callable[[str, str], None]
Sources = Sequence[tuple[str, Overrides]]

#: The overrides that make a size.
RESOURCE_KEYS = frozenset(
    {
        "cpu_guarantee",
        "cpu_limit",
        "mem_guarantee",
        "mem_limit",
        "extra_resource_limits",
        "extra_resource_guarantees",
    }
)
#: The overrides that place a server; eohub adds an environment's to the admin's own.
PLACEMENT_KEYS = frozenset({"node_selector", "tolerations", "environment"})
#: What a size says when the pod requests no CPU or memory: the least eohub accepts.
NO_CPU = 0.001
NO_MEMORY = "1M"
_EXTRA = ("extra_resource_limits", "extra_resource_guarantees")


def merge(base: Mapping[str, Any], sources: Iterable[tuple[str, Overrides]]) -> dict[str, Any]:
    """``base`` with each ``(path, overrides)`` applied in turn, as KubeSpawner applies them."""
    result = dict(base)
    for _, overrides in sources:
        result = merged(result, overrides)
    return result


def cores(value: object) -> float | None:
    """A CPU amount KubeSpawner and eohub both read, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value <= MAX_CPU else None


def byte_count(value: object) -> int | None:
    """Bytes from a memory amount (``"4G"``: powers of 1024, as KubeSpawner), or None."""
    try:
        result = parse_bytes(value)
    except ValueError:
        return None
    return result if result > 0 else None


def is_gpu(resource: object, gpu_resource: str) -> bool:
    """Whether an extra resource counts as GPUs: ``gpu_resource`` or any ``*/gpu``."""
    return isinstance(resource, str) and (resource == gpu_resource or resource.endswith("/gpu"))


def requested(guarantee: Any, limit: Any, charge: str = "guarantee") -> Any:
    """What is charged of a guarantee and a limit: the guarantee (with ``charge: limit``,
    the limit), else the other. KubeSpawner's ``make_pod`` sends no request for a
    guarantee of 0 or None, and Kubernetes then requests what is limited."""
    first, second = (limit, guarantee) if charge == "limit" else (guarantee, limit)
    return first or second


def _plain(value: Any) -> Any:
    # 2.0 reads better as 2 in YAML; memory stays as the admin wrote it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def describe_size(size: Mapping[str, Any]) -> str:
    """A size's display name when no choice names it: ``2 CPU, 4 GiB, 1 GPU``."""
    memory = (byte_count(size["memory"]) or 0) / 1024**3
    parts = [f"{float(size['cpu']):g} CPU", f"{memory:.3g} GiB"]
    if size.get("gpus"):
        parts.append(f"{size['gpus']} GPU")
    return ", ".join(parts)


def _amounts(full: Mapping[str, Any], where: str, warn: Warn) -> dict[str, Any]:
    amounts: dict[str, Any] = {}
    for key, read in (
        ("cpu_guarantee", cores),
        ("cpu_limit", cores),
        ("mem_guarantee", byte_count),
        ("mem_limit", byte_count),
    ):
        value = full.get(key)
        if value is not None and read(value) is None:
            warn(f"{where}.kubespawner_override.{key}", f"{value!r} cannot be read; ignored")
        elif value is not None:
            amounts[key] = value
    return amounts


def read_size(
    full: Mapping[str, Any],
    own: Mapping[str, Any],
    choice: Choice | None,
    where: str,
    *,
    gpu_resource: str,
    warn: Warn,
) -> dict[str, Any]:
    """The size a launch asks for: requests (what eohub charges), limits and GPUs.

    ``full`` is the merged result with the admin's values, ``own`` without them.
    """
    amounts = _amounts(full, where, warn)
    data: dict[str, Any] = {}
    for what, given, limit, empty, read in (
        ("cpu", "cpu_guarantee", "cpu_limit", NO_CPU, cores),
        ("memory", "mem_guarantee", "mem_limit", NO_MEMORY, byte_count),
    ):
        data[what] = requested(amounts.get(given), amounts.get(limit))
        if data[what] is None:
            warn(
                where,
                f"the pod requests no {what}; an eohub size needs one (it is what is "
                f"charged), so the size says {empty}: set a real value",
            )
            data[what] = empty
        if limit in amounts and (read(amounts[limit]) or 0) < (read(data[what]) or 0):
            warn(f"{where}.kubespawner_override.{limit}", "is below the request; ignored")
        elif limit in amounts:
            data[f"{what}_limit"] = amounts[limit]
    gpus = read_gpus(full, own, where, gpu_resource=gpu_resource, warn=warn)
    if gpus:
        data["gpus"] = gpus
    data = {k: _plain(v) for k, v in data.items()}
    label = choice.display_name if choice is not None else describe_size(data)
    described = {"description": choice.description} if choice and choice.description else {}
    return {"display_name": label[:MAX_TEXT], **described, **data}


def read_gpus(
    full: Mapping[str, Any], own: Mapping[str, Any], where: str, *, gpu_resource: str, warn: Warn
) -> int:
    """The GPUs of ``extra_resource_limits`` (or guarantees), as QuotaKubeSpawner counts."""
    limits, guarantees = (full.get(k) or {} for k in _EXTRA)
    if not isinstance(limits, Mapping) or not isinstance(guarantees, Mapping):
        warn(where, "extra resources that are not mappings are not converted")
        return 0
    total = 0
    for key in sorted({*limits, *guarantees}, key=str):
        path = f"{where}.kubespawner_override.extra_resource_limits.{key}"
        if not is_gpu(key, gpu_resource):
            if any(key in (own.get(k) or {}) for k in _EXTRA):
                warn(path, "only GPUs are converted; set it on QuotaKubeSpawner if all need it")
            continue
        if key != gpu_resource:
            warn(
                path,
                f"eohub requests GPUs as {gpu_resource}: set "
                f"QuotaKubeSpawner.gpu_resource_name = {key!r}",
            )
        value = limits.get(key, guarantees.get(key))
        try:
            count = int(str(value))
        except ValueError:
            count = -1
        if not 0 <= count <= MAX_GPUS:
            warn(path, f"{value!r} is not a number of GPUs from 0 to {MAX_GPUS}; ignored")
            continue
        total += count
    return total


def _last(sources: Sources, key: str) -> str:
    """The key path of the override that set ``key`` last."""
    path = next((p for p, o in reversed(sources) if key in o), "")
    return f"{path}.kubespawner_override.{key}"


def read_placement(
    own: Mapping[str, Any], sources: Sources, *, base_tolerations: object, warn: Warn
) -> dict[str, Any]:
    """The profile's own node selector, tolerations and env (eohub adds the admin's)."""
    result: dict[str, Any] = {}
    for key, target, pattern in (
        ("node_selector", "node_selector", LABEL_KEY),
        ("environment", "env", ENV_NAME),
    ):
        where = _last(sources, key)
        if any(isinstance(o.get(key), Mapping) and None in o[key].values() for _, o in sources):
            warn(where, "removes an admin's value with null; eohub can only add to them")
        given = own.get(key)
        if not isinstance(given, Mapping):
            continue
        values: dict[str, str] = {}
        for k, v in given.items():
            if not isinstance(k, str) or not pattern.fullmatch(k) or not isinstance(v, str):
                warn(f"{where}.{k}", "is not a plain name and string value; not converted")
                continue
            if "{" in v:
                warn(f"{where}.{k}", "eohub passes it as written: KubeSpawner's {fields} stay")
            values[k] = v
        if values:
            result[target] = values
    tolerations = own.get("tolerations")
    if isinstance(tolerations, list | tuple) and tolerations:
        where = _last(sources, "tolerations")
        if base_tolerations:
            warn(where, "replaces the admin's tolerations; eohub adds to them")
        kept = [dict(t) for t in tolerations if isinstance(t, Mapping)]
        if len(kept) != len(tolerations) or any(set(t) - TOLERATION_KEYS for t in kept):
            warn(where, "has entries eohub cannot read; only their known keys are kept")
        result["tolerations"] = [
            {k: v for k, v in t.items() if k in TOLERATION_KEYS} for t in kept
        ]
    return result


__all__ = [
    "NO_CPU",
    "NO_MEMORY",
    "PLACEMENT_KEYS",
    "RESOURCE_KEYS",
    "byte_count",
    "cores",
    "describe_size",
    "merge",
    "read_gpus",
    "read_placement",
    "read_size",
]
