"""Which profile overrides break the restricted Pod Security Standard, found at start-up."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.launch.overrides import merged
from eohub.domain.launch.pod_security import restricted_violations
from eohub.domain.launch.profile_security import override_violations, sketch_pod
from eohub.domain.launch.profiles import parse_profile_list

#: The spawner's own values, as QuotaKubeSpawner's defaults set them.
BASE: dict[str, Any] = {
    "uid": 1000,
    "fs_gid": 100,
    "allow_privilege_escalation": False,
    "container_security_context": {
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "pod_security_context": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
}


def one_choice(overrides: dict[str, Any]) -> list[Any]:
    return [
        {"display_name": "Plain"},
        {
            "display_name": "Special",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "cpu": {"display_name": "CPU"},
                        "gpu": {"display_name": "GPU", "kubespawner_override": overrides},
                    },
                }
            },
        },
    ]


CHOICE = "profile_list[1].profile_options.image.choices.gpu.kubespawner_override"


def test_the_base_itself_is_restricted() -> None:
    assert restricted_violations(sketch_pod(BASE)) == []


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"privileged": True}, "privileged", "privileged"),
        ({"uid": 0}, "uid", "runAsUser 0"),
        ({"allow_privilege_escalation": True}, "allow_privilege_escalation", "escalation"),
        (
            {"container_security_context": {"capabilities": {"add": ["NET_ADMIN"]}}},
            "container_security_context",
            "NET_ADMIN",
        ),
        (
            {"container_security_context": {"capabilities": None}},
            "container_security_context",
            "ALL",
        ),
        ({"extra_pod_config": {"host_network": True}}, "extra_pod_config", "hostNetwork"),
        ({"extra_pod_config": {"hostPID": True}}, "extra_pod_config", "hostPID"),
        (
            {"extra_container_config": {"security_context": {"privileged": True}}},
            "extra_container_config",
            "privileged",
        ),
        (
            {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
            "volumes",
            "hostPath",
        ),
        (
            {
                "init_containers": [
                    {"name": "block", "image": "x", "securityContext": {"privileged": True}}
                ]
            },
            "init_containers",
            "block",
        ),
    ],
)
def test_an_override_that_breaks_the_standard_is_named_by_its_path(
    overrides: dict[str, Any], key: str, fragment: str
) -> None:
    profiles = parse_profile_list(one_choice(overrides), str.lower)
    problems = override_violations(BASE, profiles)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{CHOICE}.{key}: ")
    assert fragment in problems[0]


@pytest.mark.parametrize(
    "overrides",
    [
        {"image": "quay.io/x:1", "cpu_guarantee": 2, "mem_limit": "4G"},
        {"environment": {"A": "1"}, "node_selector": {"gpu": "yes"}},
        {"uid": 1001, "fs_gid": 1001},
        {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]},
        {"privileged": lambda spawner: True},  # callables are checked at the spawn
    ],
)
def test_overrides_within_the_standard_pass(overrides: dict[str, Any]) -> None:
    assert override_violations(BASE, parse_profile_list(one_choice(overrides), str.lower)) == []


def test_a_profile_level_override_is_checked_and_options_build_on_it() -> None:
    data = one_choice({"container_security_context": {"runAsNonRoot": None}})
    data[1]["kubespawner_override"] = {"uid": 0}
    problems = override_violations(BASE, parse_profile_list(data, str.lower))
    assert problems[0].startswith("profile_list[1].kubespawner_override.uid: ")


def test_an_unlisted_choice_is_checked_with_a_sample_value() -> None:
    data = one_choice({})
    data[1]["profile_options"]["image"]["unlisted_choice"] = {
        "enabled": True,
        "kubespawner_override": {"image": "{value}", "privileged": True},
    }
    problems = override_violations(BASE, parse_profile_list(data, str.lower))
    assert problems == [
        "profile_list[1].profile_options.image.unlisted_choice.kubespawner_override."
        "privileged: container 'notebook' is privileged"
    ]


@pytest.mark.parametrize(
    ("traits", "overrides", "expected"),
    [
        ({"a": {"x": 1, "y": 2}}, {"a": {"y": None, "z": 3}}, {"a": {"x": 1, "z": 3}}),
        ({"a": {"x": {"p": 1}}}, {"a": {"x": {"q": 2}}}, {"a": {"x": {"p": 1, "q": 2}}}),
        ({"a": [1]}, {"a": [2]}, {"a": [2]}),
        ({"a": 1}, {"b": lambda s: 2}, {"a": 1}),
        ({}, {"a": {"x": None}}, {"a": {}}),
    ],
)
def test_overrides_merge_as_kubespawner_merges_them(
    traits: dict[str, Any], overrides: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = repr(traits)
    assert merged(traits, overrides) == expected
    assert repr(traits) == before  # the admin's value is not changed


def test_containers_and_volumes_are_read_in_either_case_as_kubespawner_reads_them() -> None:
    restricted = {
        "allow_privilege_escalation": False,
        "run_as_non_root": True,
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    fine = {"init_containers": [{"name": "x", "image": "busybox", "security_context": restricted}]}
    assert override_violations(BASE, parse_profile_list(one_choice(fine), str.lower)) == []
    bad = {
        "init_containers": [{"name": "x", "image": "b", "security_context": {"privileged": True}}]
    }
    [problem] = override_violations(BASE, parse_profile_list(one_choice(bad), str.lower))
    assert problem.startswith(f"{CHOICE}.init_containers: ")
    assert "privileged" in problem
