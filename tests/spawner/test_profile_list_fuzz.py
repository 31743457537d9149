"""Hypothesis over user options for a profile-list config: whatever a request holds, it
gets a 400 or 403 or a pod made only of the admin's choices, never a 500."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tornado.web import HTTPError

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.pod_security import restricted_violations
from tests.spawner.test_profile_list import IMAGE_REGEX, PROFILES, notebook, spawner_with
from tests.support.kube_api import fake_kubeconfig, validate
from tests.support.kube_spawners import ENVIRONMENTS, NO_API, FakeAccounting, serialise


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_kubeconfig(tmp_path_factory.mktemp("kube"), NO_API) as path:
        yield path


# -- hypothesis: whatever the request, only the admin's choices reach a pod --------------

#: The images a pod of alice's may have, from the raw config (not eohub's reading of it).
LISTED_IMAGES = {
    o["image"]
    for p in PROFILES
    if not p.get("allowed_groups")
    for o in [
        p.get("kubespawner_override", {}),
        *(
            c.get("kubespawner_override", {})
            for opt in p.get("profile_options", {}).values()
            for c in opt.get("choices", {}).values()
        ),
    ]
    if "image" in o
} | {
    e["image"]
    for e in ENVIRONMENTS.values()
    if not e.get("allowed_groups") and not e.get("allowed_users")
}
#: The CPU requests a pod of alice's may have: the profiles' and the sizes'.
ALLOWED_CPU = {1.0, 2.0, 4.0, 0.5}
NAMES = st.sampled_from(
    [
        "cpu",
        "gpu",
        "burst",
        "mixed-gpu",
        "limits-only",
        "ml-only",
        "pangeo",
        "gpu-ml",
        "scipy",
        "four",
        "staff",
        "one",
        "unlisted-choice",
        "",
        "eo-sci",
        "small",
    ]
)
FREE_TEXT = st.sampled_from(
    [
        "quay.io/me/img:1",
        "quay.io/me/img:1;rm",
        "evil.io/quay.io/me/img:1",
        "quay.io/{username}/x:1",
        "quay.io/a/b:c\n",
    ]
) | st.text(max_size=30)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | NAMES | st.text(max_size=10)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=2)
    ),
    max_leaves=6,
)
KEYS = {
    "profile": NAMES | VALUES,
    "image": NAMES | FREE_TEXT | VALUES,
    "image--unlisted-choice": FREE_TEXT | VALUES,
    "cores": NAMES | VALUES,
    "cores--unlisted-choice": FREE_TEXT,
    "environment": NAMES,
    "size": NAMES,
    "group": st.sampled_from(["eo-sci", "eo-ml", "climate"]) | VALUES,
    "volumes": st.lists(st.sampled_from(["scratch", "ml_models", "workspace"]), max_size=2)
    | VALUES,
    "cpu": VALUES,
    "mem": VALUES,
    "gpus": VALUES,
    "urlpath": st.sampled_from(["/lab", "//evil.org", "/lab/tree/x"]) | VALUES,
}
# Well-formed profile launches, allowed or not, so that many examples build a pod.
CPU_CHOICES = {
    "image": st.sampled_from(["pangeo", "scipy", "unlisted-choice", "nope"]),
    "image--unlisted-choice": st.sampled_from(["quay.io/me/img:1", "quay.io/me/img:1;rm"]),
    "cores": st.sampled_from(["one", "four", "staff"]),
}


def _plausible(slug: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "group": st.just("eo-sci"),
        "volumes": st.sampled_from([[], ["scratch"]]),
    }
    if slug == "cpu":
        optional.update(CPU_CHOICES)
    return st.fixed_dictionaries({"profile": st.just(slug)}, optional=optional)


PLAUSIBLE = st.sampled_from(
    ["cpu", "cpu", "cpu", "gpu", "burst", "mixed-gpu", "limits-only", "ml-only"]
).flatmap(_plausible)
USER_OPTIONS = st.one_of(
    st.fixed_dictionaries({}, optional=KEYS),
    st.builds(
        lambda a, b: {**b, **a},
        st.fixed_dictionaries({}, optional=KEYS),
        st.dictionaries(st.text(max_size=10), VALUES, max_size=2),
    ),
    VALUES,
)
ANSWERS = st.sampled_from(
    [
        QuotaAnswer(True, "Within budget.", {"core_hours": 500.0, "gpu_hours": 10.0}),
        QuotaAnswer(True, "Nearly spent.", {"core_hours": 2.5, "gpu_hours": 0.0}),
        QuotaAnswer(False, "Spent.", {"core_hours": 0.0}),
        QuotaAnswer(True, "The service did not answer.", {}, "fail-open"),
    ]
)
_kept: dict[int, Any] = {}


def assert_only_the_admins_choices(pod: dict[str, Any]) -> None:
    container = notebook(pod)
    image = container["image"]
    assert image in LISTED_IMAGES or (re.fullmatch(IMAGE_REGEX, image) and "{" not in image), (
        f"image {image!r} is no choice of the admin's"
    )
    requests = container["resources"].get("requests", {})
    limits = container["resources"].get("limits", {})
    assert requests.get("cpu", 1.0) in ALLOWED_CPU, container["resources"]
    assert limits.get("cpu", 2.0) != 64.0, "a staff-only choice reached alice's pod"
    if "nvidia.com/gpu" in limits or "amd.com/gpu" in limits:
        assert image == "quay.io/eohub/gpu:1"
    assert image != "quay.io/eohub/ml-secret:1"
    assert restricted_violations(pod) == []


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(answer=ANSWERS, fresh=st.booleans(), data=st.data())
async def test_random_user_options_never_reach_a_pod_the_profiles_did_not_allow(
    answer: QuotaAnswer, fresh: bool, data: st.DataObject
) -> None:
    # Half the requests are well-formed profile launches, half anything at all.
    plausible = data.draw(st.booleans(), label="plausible")
    options = data.draw(PLAUSIBLE if plausible else USER_OPTIONS, label="options")
    key = id(asyncio.get_running_loop())
    if fresh or key not in _kept:
        _kept[key] = await spawner_with()
    spawner = _kept[key]
    spawner.accounting = FakeAccounting(answer)
    refusal: HTTPError | None = None
    try:
        await spawner.authorize_launch(options)
    except HTTPError as e:
        refusal = e
    if refusal is not None:
        event(f"refused with {refusal.status_code}")
        assert refusal.status_code in (400, 403), refusal  # never a 500
        return
    event("profile pod" if spawner.launch.profile is not None else "environment pod")
    pod = serialise(spawner, await spawner.get_pod_manifest())
    validate(pod)
    assert_only_the_admins_choices(pod)
