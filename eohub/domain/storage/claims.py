"""Whose a persistent volume claim is: the user and, when the claim says, the group.

KubeSpawner creates each user's claim with the annotation ``hub.jupyter.org/username``
(the user's name as the hub knows it) and the label of the same key (a slug of it,
which equals the name only when the name is a valid label value): the annotation is
read first. The group comes from, in order: the sampler's ``claim_groups`` map, the
claim's annotation ``group_key`` (default ``eohub.io/group``), then its label of that
key; a claim that names none leaves the choice to the sampler's shared group mapping.

A claim without a user but with a group is the group's shared space (a ``pvc`` volume of
the launch config whose ``claim_name`` uses ``{group}``, created by the admin): it is
sampled as the user the ``group_claim_user`` template names (default ``{group}``), and
charged to that group. Any other claim (the hub's database, a claim of another
application) is skipped with the reason.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from eohub.domain.fields import describe
from eohub.domain.storage.kubelet import VolumeUsage
from eohub.domain.storage.owners import Owner, name_problem

USERNAME_KEY = "hub.jupyter.org/username"
DEFAULT_GROUP_KEY = "eohub.io/group"
DEFAULT_GROUP_CLAIM_USER = "{group}"


@dataclass(frozen=True)
class ClaimMeta:
    """What the sampler reads of a claim: its name, annotations and labels."""

    name: str
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimRules:
    """How claims map to owners (the sampler's settings of the same names)."""

    group_key: str = DEFAULT_GROUP_KEY
    claim_groups: Mapping[str, str] = field(default_factory=dict)
    group_claim_user: str = DEFAULT_GROUP_CLAIM_USER


@dataclass(frozen=True)
class ClaimOwner:
    """A claim's owner: ``group`` None leaves it to the sampler's group mapping;
    ``shared`` marks a group's shared claim, sampled as ``group_claim_user``."""

    user: str
    group: str | None
    shared: bool = False


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def claim_meta(obj: object) -> ClaimMeta | None:
    """A PersistentVolumeClaim object (decoded JSON) as :class:`ClaimMeta`; None if it
    has no name."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(meta, Mapping) or not isinstance(name, str) or not name:
        return None
    return ClaimMeta(name, _strings(meta.get("annotations")), _strings(meta.get("labels")))


def check_group_claim_user(template: str) -> str:
    """``template`` if it names a user from ``{group}`` alone; ValueError if not."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise ValueError(f"{describe(template)} is not a valid template: {e}") from None
    if fields - {"group"}:
        raise ValueError(
            f"{describe(template)} may use only {{group}}, not "
            + ", ".join("{" + f + "}" for f in sorted(fields - {"group"}))
        )
    try:
        filled = template.format(group="climate")
    except (ValueError, AttributeError, IndexError, KeyError, TypeError) as e:
        raise ValueError(f"{describe(template)} is not a valid template: {e}") from None
    problem = name_problem(filled, "user")
    if problem:
        raise ValueError(f"{describe(template)} makes the user name {filled!r}, which {problem}")
    return template


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def owner_of(claim: ClaimMeta, rules: ClaimRules) -> ClaimOwner | str:
    """The claim's owner, or the reason it has none the sampler can charge."""
    user = _first(claim.annotations.get(USERNAME_KEY), claim.labels.get(USERNAME_KEY))
    group = _first(
        rules.claim_groups.get(claim.name),
        claim.annotations.get(rules.group_key),
        claim.labels.get(rules.group_key),
    )
    problem = None if group is None else name_problem(group, "group")
    if problem:
        return f"its group {describe(group)} {problem}"
    if user is None:
        if group is None:
            return (
                f"it has no {USERNAME_KEY} annotation or label (KubeSpawner's), no "
                f"{rules.group_key} annotation or label, and is not in claim_groups"
            )
        user, shared = rules.group_claim_user.format(group=group), True
    else:
        shared = False
    problem = name_problem(user, "user")
    if problem:
        return f"its user {describe(user)} {problem}"
    return ClaimOwner(user, group, shared)


def claim_owners(
    claims: Iterable[ClaimMeta], rules: ClaimRules
) -> tuple[dict[str, ClaimOwner], dict[str, str]]:
    """Each claim's owner by claim name, and the claims skipped with their reasons."""
    owners: dict[str, ClaimOwner] = {}
    skipped: dict[str, str] = {}
    for claim in claims:
        found = owner_of(claim, rules)
        if isinstance(found, str):
            skipped[claim.name] = found
        else:
            owners[claim.name] = found
    return owners, skipped


def claim_source(namespace: str, claim: str) -> str:
    """The source a claim's samples carry: ``pvc:<namespace>/<claim>``."""
    return f"pvc:{namespace}/{claim}"


def measured_owners(
    usage: Mapping[str, VolumeUsage], owners: Mapping[str, ClaimOwner], namespace: str
) -> list[Owner]:
    """One :class:`Owner` per claim measured and owned, its source the claim.

    A user has a claim per named server on the chart's default storage: each is its own
    source, never added to the others here, so that a claim not measured this round
    (mounted by no running pod, on a node that did not answer) keeps its last sample
    instead of dropping out of a sum. A claim measured but not owned (not listed, or
    skipped) counts for no one.
    """
    return [
        Owner(
            user=owner.user,
            group=owner.group,
            bytes=found.used_bytes,
            file_count=found.inodes_used,
            source=claim_source(namespace, claim),
        )
        for claim, found in sorted(usage.items())
        if (owner := owners.get(claim)) is not None
    ]


__all__ = [
    "DEFAULT_GROUP_CLAIM_USER",
    "DEFAULT_GROUP_KEY",
    "USERNAME_KEY",
    "ClaimMeta",
    "ClaimOwner",
    "ClaimRules",
    "check_group_claim_user",
    "claim_meta",
    "claim_owners",
    "claim_source",
    "measured_owners",
    "owner_of",
]
