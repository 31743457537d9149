"""Whose a claim is: tables of claims as KubeSpawner and admins make them."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.fields import describe
from eohub.domain.storage.claims import (
    ClaimMeta,
    ClaimOwner,
    ClaimRules,
    check_group_claim_user,
    claim_meta,
    claim_owners,
    measured_owners,
    owner_of,
)
from eohub.domain.storage.kubelet import VolumeUsage
from eohub.domain.storage.owners import Owner

USER = "hub.jupyter.org/username"
GROUP = "eohub.io/group"
RULES = ClaimRules()


def spawner_claim(name: str, user: str, slug: str | None = None, **annotations: str) -> ClaimMeta:
    """A claim as KubeSpawner 7 creates it: the name annotated, its slug as a label."""
    return ClaimMeta(
        name,
        {
            USER: user,
            "hub.jupyter.org/kubespawner-version": "7.1.0",
            "hub.jupyter.org/jupyterhub-version": "5.5.0",
            **annotations,
        },
        {
            USER: slug or user,
            "app": "jupyterhub",
            "heritage": "jupyterhub",
            "component": "singleuser-storage",
            "app.kubernetes.io/component": "singleuser-server",
        },
    )


CASES: list[tuple[str, ClaimMeta, ClaimRules, ClaimOwner | str]] = [
    (
        "KubeSpawner's claim",
        spawner_claim("claim-alice", "alice"),
        RULES,
        ClaimOwner("alice", None),
    ),
    (
        "the annotation holds the name, the label only its slug",
        spawner_claim("claim-alice-40example-2eorg", "alice@example.org", "alice-40example-2eorg"),
        RULES,
        ClaimOwner("alice@example.org", None),
    ),
    (
        "filter-like and odd names come out as written",
        spawner_claim("claim-x", 'a,b=c !d {group} o"brien', "x---1a2b3c"),
        RULES,
        ClaimOwner('a,b=c !d {group} o"brien', None),
    ),
    (
        "no annotation (an older KubeSpawner): the label",
        ClaimMeta("claim-carol", {}, {USER: "carol"}),
        RULES,
        ClaimOwner("carol", None),
    ),
    (
        "the claim's group annotation",
        spawner_claim("workspace-bob-eo-ml", "bob", **{GROUP: "eo-ml"}),
        RULES,
        ClaimOwner("bob", "eo-ml"),
    ),
    (
        "the group label when there is no annotation",
        ClaimMeta("w", {USER: "bob"}, {GROUP: "eo-sci"}),
        RULES,
        ClaimOwner("bob", "eo-sci"),
    ),
    (
        "claim_groups wins over the claim's own",
        spawner_claim("claim-bob", "bob", **{GROUP: "eo-ml"}),
        ClaimRules(claim_groups={"claim-bob": "climate"}),
        ClaimOwner("bob", "climate"),
    ),
    (
        "a group annotation of the admin's choosing",
        ClaimMeta("w", {USER: "bob", "example.org/project": "p1", GROUP: "ignored"}),
        ClaimRules(group_key="example.org/project"),
        ClaimOwner("bob", "p1"),
    ),
    (
        "an empty annotation counts as none",
        ClaimMeta("w", {USER: "", GROUP: ""}, {USER: "bob"}),
        RULES,
        ClaimOwner("bob", None),
    ),
    (
        "a group's shared claim, annotated by the admin",
        ClaimMeta("group-climate", {GROUP: "climate"}),
        RULES,
        ClaimOwner("climate", "climate", shared=True),
    ),
    (
        "a group's shared claim from claim_groups, with the user template",
        ClaimMeta("eo-scratch"),
        ClaimRules(claim_groups={"eo-scratch": "eo-sci"}, group_claim_user="group:{group}"),
        ClaimOwner("group:eo-sci", "eo-sci", shared=True),
    ),
    (
        "the hub's database claim",
        ClaimMeta("hub-db-dir", {}, {"app": "jupyterhub", "component": "hub"}),
        RULES,
        "it has no hub.jupyter.org/username annotation or label (KubeSpawner's), no "
        "eohub.io/group annotation or label, and is not in claim_groups",
    ),
    (
        "a user name the accounting service refuses",
        ClaimMeta("w", {USER: "bad\nname"}),
        RULES,
        "its user 'bad\\nname' is empty, longer than 255 characters or holds control characters",
    ),
    (
        "a group name the accounting service refuses",
        ClaimMeta("w", {USER: "bob", GROUP: " padded "}),
        RULES,
        "its group ' padded ' starts or ends with white space",
    ),
    (
        "a template that makes too long a name",
        ClaimMeta("g", {GROUP: "g" * 200}),
        ClaimRules(group_claim_user="{group}-{group}"),
        f"its user {describe('g' * 200 + '-' + 'g' * 200)} is empty, longer than 255 "
        "characters or holds control characters",
    ),
]


@pytest.mark.parametrize(
    ("claim", "rules", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_claim_owner(claim: ClaimMeta, rules: ClaimRules, expected: ClaimOwner | str) -> None:
    assert owner_of(claim, rules) == expected


def test_claims_split_into_owners_and_skipped() -> None:
    owners, skipped = claim_owners(
        [spawner_claim("claim-alice", "alice"), ClaimMeta("hub-db-dir")], RULES
    )
    assert owners == {"claim-alice": ClaimOwner("alice", None)}
    assert list(skipped) == ["hub-db-dir"]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": "claim-a",
                    "annotations": {USER: "a", "n": 1},
                    "labels": None,
                },
                "spec": {},
            },
            ClaimMeta("claim-a", {USER: "a"}, {}),
        ),
        ({"metadata": {"name": "bare"}}, ClaimMeta("bare")),
        ({"metadata": {"name": ""}}, None),
        ({"metadata": []}, None),
        ("claim", None),
    ],
)
def test_claim_objects(obj: Any, expected: ClaimMeta | None) -> None:
    assert claim_meta(obj) == expected


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{group}", None),
        ("group-{group}", None),
        ("shared space", None),  # every group's shared claim charged to one name
        ("{user}", r"may use only \{group\}, not \{user\}"),
        ("{group", "is not a valid template"),
        ("{0}", r"may use only \{group\}, not \{0\}"),
        ("", "makes the user name '', which is empty"),
        ("\t{group}", "makes the user name"),
    ],
)
def test_the_group_claim_user_template(template: str, problem: str | None) -> None:
    if problem is None:
        assert check_group_claim_user(template) == template
    else:
        with pytest.raises(ValueError, match=problem):
            check_group_claim_user(template)


def test_each_claim_is_its_own_source_never_added_to_the_others() -> None:
    owners = {
        "claim-alice": ClaimOwner("alice", None),
        "claim-alice--gpu": ClaimOwner("alice", None),  # a named server's own claim
        "workspace-alice-eo-ml": ClaimOwner("alice", "eo-ml"),
        "group-climate": ClaimOwner("climate", "climate", shared=True),
        "not-measured": ClaimOwner("bob", None),
    }
    usage = {
        "claim-alice": VolumeUsage("claim-alice", 100, 3),
        "claim-alice--gpu": VolumeUsage("claim-alice--gpu", 50, 2),
        "workspace-alice-eo-ml": VolumeUsage("workspace-alice-eo-ml", 7, 1),
        "group-climate": VolumeUsage("group-climate", 1000, 10),
        "hub-db-dir": VolumeUsage("hub-db-dir", 9, 9),  # owned by no one
    }
    # A claim not measured this round (not-measured) is left out, and alice's other
    # claims are not summed: the service keeps each claim's latest figure.
    assert measured_owners(usage, owners, "hub") == [
        Owner("alice", None, 100, 3, "pvc:hub/claim-alice"),
        Owner("alice", None, 50, 2, "pvc:hub/claim-alice--gpu"),
        Owner("climate", "climate", 1000, 10, "pvc:hub/group-climate"),
        Owner("alice", "eo-ml", 7, 1, "pvc:hub/workspace-alice-eo-ml"),
    ]
