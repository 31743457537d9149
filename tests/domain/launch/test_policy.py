"""Launch policy: visibility, sizes against budgets, authorization and fallback."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.reconcile import HubServer, StartDefaults, session_start
from eohub.domain.launch.config import LaunchConfig, Size, parse_launch_config
from eohub.domain.launch.options import (
    FIELDS,
    LaunchRequest,
    OptionsError,
    parse_options,
    urlpath_problem,
)
from eohub.domain.launch.policy import (
    Budget,
    Launch,
    Member,
    allowed_volumes,
    authorize,
    chargeable_groups,
    check_charged,
    fallback,
    hours_left,
    offered_sizes,
    size_fits,
    split_charged,
    visible_environments,
)

SIZES = {
    "small": {"cpu": 1, "memory": "2G"},
    "medium": {"cpu": 2, "memory": "4G"},
    "large": {"cpu": 4, "memory": "16G"},
    "gpu": {"cpu": 4, "memory": "16G", "gpus": 1},
}
ENVIRONMENTS = {
    "pangeo": {
        "image": "pangeo/pangeo-notebook:2024.01.01",
        "default": True,
        "sizes": ["small", "medium", "large"],
        "default_size": "medium",
    },
    "climate": {
        "image": "eohub/climate:1",
        "allowed_groups": ["climate"],
        "default_urlpath": "/rstudio/",
    },
    "personal": {"image": "eohub/alice:1", "allowed_users": ["alice"]},
    "ml": {
        "image": "eohub/ml:1",
        "gpu": True,
        "allowed_groups": ["ml"],
        "sizes": ["small", "gpu"],
    },
}
VOLUMES = {
    "home": {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "10Gi"},
    "common-data": {
        "kind": "pvc",
        "claim_name": "common-data",
        "mount_path": "/data/common",
        "read_only": True,
        "optional": True,
    },
    "ml-scratch": {
        "kind": "pvc",
        "claim_name": "ml-scratch",
        "mount_path": "/scratch",
        "optional": True,
        "allowed_groups": ["ml"],
    },
    "climate-archive": {
        "kind": "nfs",
        "server": "nfs.example.org",
        "path": "/archive",
        "mount_path": "/data/archive",
        "read_only": True,
        "allowed_groups": ["climate"],
    },
}
CONFIG = parse_launch_config(ENVIRONMENTS, SIZES, VOLUMES, backend="kube")
# Only climate and ml are funded: staff cannot be charged.
FUNDED = parse_launch_config(
    ENVIRONMENTS, SIZES, VOLUMES, backend="kube", charge_groups=["climate", "ml"]
)
# The default environment is hidden from most users.
HIDDEN_DEFAULT = parse_launch_config(
    {"a": {"image": "a", "default": True, "allowed_groups": ["x"]}, "b": {"image": "b"}},
    {"s": {"cpu": 1, "memory": "1G"}},
    {},
    backend="kube",
)

ALICE = Member("alice", frozenset({"climate"}))
BOB = Member("bob", frozenset({"climate", "ml"}))
CAROL = Member("carol", frozenset())
DAVE = Member("dave", frozenset({"ml", "staff"}))
MEMBERS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "dave": DAVE}


def budget(
    core: float | None = None, mem: float | None = None, gpu: float | None = None
) -> Budget:
    return {"core_hours": core, "memory_gib_hours": mem, "gpu_hours": gpu}


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (ALICE, ["pangeo", "climate", "personal"]),
        (BOB, ["pangeo", "climate", "ml"]),
        (CAROL, ["pangeo"]),
        (DAVE, ["pangeo", "ml"]),
        (Member("alice"), ["pangeo", "personal"]),  # by name, without any group
        (Member("Alice", frozenset({"Climate"})), ["pangeo"]),  # names are exact
    ],
)
def test_visible_environments(member: Member, expected: list[str]) -> None:
    assert [e.name for e in visible_environments(CONFIG, member)] == expected


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (ALICE, ["home", "common-data", "climate-archive"]),
        (BOB, ["home", "common-data", "ml-scratch", "climate-archive"]),
        (CAROL, ["home", "common-data"]),
        (DAVE, ["home", "common-data", "ml-scratch"]),
    ],
)
def test_allowed_volumes(member: Member, expected: list[str]) -> None:
    assert [v.name for v in allowed_volumes(CONFIG, member)] == expected


@pytest.mark.parametrize(
    ("config", "member", "expected"),
    [
        (CONFIG, ALICE, ["climate"]),
        (CONFIG, DAVE, ["ml", "staff"]),
        (CONFIG, CAROL, []),
        (FUNDED, DAVE, ["ml"]),
        (FUNDED, BOB, ["climate", "ml"]),
        (FUNDED, Member("eve", frozenset({"staff"})), []),
    ],
)
def test_chargeable_groups(config: LaunchConfig, member: Member, expected: list[str]) -> None:
    assert chargeable_groups(config, member) == expected


def sized(cpu: float = 1, memory: int = GIB, gpus: int = 0) -> Size:
    return Size(name="s", display_name="s", cpu=cpu, memory=memory, gpus=gpus)


FITS: list[tuple[str, Size, Budget, Fraction | float, bool]] = [
    ("no budget information", sized(), {}, 1, True),
    ("every budget unlimited", sized(), budget(), 1, True),
    ("exactly enough core-hours", sized(cpu=2), budget(core=2.0), 1, True),
    ("just short of core-hours", sized(cpu=2), budget(core=1.999999), 1, False),
    ("exactly enough for two hours", sized(cpu=2), budget(core=4), 2, True),
    ("just short of two hours", sized(cpu=2), budget(core=3.999999), 2, False),
    ("a tenth of a core, a tenth left", sized(cpu=0.1), budget(core=0.1), 1, True),
    ("a third of a core", sized(cpu=0.333), budget(core=0.333), 1, True),
    ("exactly enough memory", sized(memory=4 * GIB), budget(mem=4.0), 1, True),
    ("just short of memory", sized(memory=4 * GIB), budget(mem=3.99), 1, False),
    ("memory binds before cores", sized(cpu=1, memory=8 * GIB), budget(core=10, mem=4), 1, False),
    ("spent, even with no minimum", sized(), budget(core=0), 0, False),
    ("a little left, no minimum", sized(), budget(core=0.000001), 0, True),
    ("over-spent", sized(), budget(core=-3), 0, False),
    ("fractional minimum", sized(), budget(core=0.5), Fraction(1, 2), True),
    ("GPU budget spent: a CPU size", sized(), budget(core=10, gpu=0), 1, True),
    ("GPU budget spent: a GPU size", sized(gpus=1), budget(core=10, gpu=0), 1, False),
    ("GPU budget unlimited", sized(gpus=1), budget(core=10), 1, True),
    ("half a GPU-hour", sized(gpus=1), budget(gpu=0.5), 1, False),
    ("two GPUs, two GPU-hours", sized(gpus=2), budget(gpu=2), 1, True),
    ("two GPUs, just short", sized(gpus=2), budget(gpu=1.99), 1, False),
    ("memory budget spent stops a GPU size", sized(gpus=1), budget(mem=0, gpu=9), 1, False),
    ("infinite budget", sized(), budget(core=float("inf")), 1, True),
    ("not-a-number budget", sized(), budget(core=float("nan")), 1, False),
    ("missing keys are unlimited", sized(), {"core_hours": 5}, 1, True),
]


@pytest.mark.parametrize(
    ("size", "left", "min_hours", "fits"), [c[1:] for c in FITS], ids=[c[0] for c in FITS]
)
def test_size_fits(size: Size, left: Budget, min_hours: Fraction, fits: bool) -> None:
    assert size_fits(size, left, min_hours) is fits


@pytest.mark.parametrize(
    ("size", "left", "hours"),
    [
        (sized(cpu=1, memory=2 * GIB), budget(core=10, mem=10), Fraction(5)),
        (sized(cpu=4, memory=GIB), budget(core=10), Fraction(5, 2)),
        (sized(gpus=2), budget(gpu=3), Fraction(3, 2)),
        (sized(gpus=0), budget(gpu=3), None),
        (sized(), budget(), None),
        (sized(), budget(core=0, mem=10), Fraction(0)),
    ],
)
def test_hours_left(size: Size, left: Budget, hours: Fraction | None) -> None:
    assert hours_left(size, left) == hours


def test_offered_sizes_keep_the_order_and_say_what_fits() -> None:
    pangeo = CONFIG.environments["pangeo"]
    offers = offered_sizes(CONFIG, pangeo, budget(core=3))
    assert [(o.size.name, o.fits, o.hours) for o in offers] == [
        ("small", True, 3.0),
        ("medium", True, 1.5),
        ("large", False, 0.75),
    ]
    unknown = offered_sizes(CONFIG, pangeo, None)
    assert [(o.size.name, o.fits, o.hours) for o in unknown] == [
        ("small", True, None),
        ("medium", True, None),
        ("large", True, None),
    ]


def test_a_spent_gpu_budget_hides_only_gpu_sizes() -> None:
    offers = offered_sizes(CONFIG, CONFIG.environments["ml"], budget(core=100, gpu=0))
    assert [(o.size.name, o.fits) for o in offers] == [("small", True), ("gpu", False)]


def test_min_hours_comes_from_the_config() -> None:
    strict = parse_launch_config(ENVIRONMENTS, SIZES, VOLUMES, backend="kube", min_hours=4)
    offers = offered_sizes(strict, strict.environments["pangeo"], budget(core=4))
    assert [o.fits for o in offers] == [True, False, False]


def request(**kw: Any) -> LaunchRequest:
    return LaunchRequest(**kw)


# (id, config, member, request, budgets, (environment, size, group, volumes, urlpath))
DEFAULTS: list[tuple[str, LaunchConfig, Member, LaunchRequest, Any, tuple[Any, ...]]] = [
    (
        "nothing given",
        CONFIG,
        ALICE,
        request(),
        None,
        ("pangeo", "medium", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "no default size: the first",
        CONFIG,
        ALICE,
        request(environment="climate"),
        None,
        ("climate", "small", "climate", ("home", "climate-archive"), "/rstudio/"),
    ),
    (
        "the default size fits",
        CONFIG,
        ALICE,
        request(),
        {"climate": budget(core=3)},
        ("pangeo", "medium", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "the default size does not fit: the first that does",
        CONFIG,
        ALICE,
        request(),
        {"climate": budget(core=1.5)},
        ("pangeo", "small", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "an optional volume, mounted in config order",
        CONFIG,
        ALICE,
        request(volumes=("common-data",)),
        None,
        ("pangeo", "medium", "climate", ("home", "common-data", "climate-archive"), "/lab"),
    ),
    (
        "everything chosen",
        CONFIG,
        BOB,
        request(
            environment="ml",
            size="gpu",
            group="ml",
            volumes=("ml-scratch", "common-data"),
            urlpath="/lab/tree/train.ipynb",
        ),
        {"ml": budget(core=100, mem=1000, gpu=2)},
        (
            "ml",
            "gpu",
            "ml",
            ("home", "common-data", "ml-scratch", "climate-archive"),
            "/lab/tree/train.ipynb",
        ),
    ),
    (
        "a group accounting does not list: no budget information",
        CONFIG,
        BOB,
        request(size="large", group="climate"),
        {"ml": budget(core=0)},
        ("pangeo", "large", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "the only funded group",
        FUNDED,
        DAVE,
        request(),
        None,
        ("pangeo", "medium", "ml", ("home",), "/lab"),
    ),
    (
        "the default environment is hidden: the first visible",
        HIDDEN_DEFAULT,
        Member("u", frozenset({"g"})),
        request(),
        None,
        ("b", "s", "g", (), "/lab"),
    ),
    (
        "the default environment is visible",
        HIDDEN_DEFAULT,
        Member("u", frozenset({"x"})),
        request(),
        None,
        ("a", "s", "x", (), "/lab"),
    ),
]


@pytest.mark.parametrize(
    ("config", "member", "req", "budgets", "expected"),
    [c[1:] for c in DEFAULTS],
    ids=[c[0] for c in DEFAULTS],
)
def test_authorize_fills_in_defaults(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    budgets: Any,
    expected: tuple[Any, ...],
) -> None:
    launch = authorize(config, member, req, budgets)
    got = (
        launch.environment.name,
        launch.size.name,
        launch.group,
        tuple(v.name for v in launch.volumes),
        launch.urlpath,
    )
    assert got == expected
    assert launch.environment is config.environments[launch.environment.name]
    assert launch.size is config.sizes[launch.size.name]


# (id, config, member, request, budgets, {field: message})
REFUSALS: list[tuple[str, LaunchConfig, Member, LaunchRequest, Any, dict[str, str]]] = [
    (
        "an unknown environment",
        CONFIG,
        ALICE,
        request(environment="nope"),
        None,
        {"environment": "no environment 'nope' is available to you"},
    ),
    (
        "a hidden environment",
        CONFIG,
        ALICE,
        request(environment="ml"),
        None,
        {"environment": "no environment 'ml' is available to you"},
    ),
    (
        "another user's environment",
        CONFIG,
        BOB,
        request(environment="personal"),
        None,
        {"environment": "no environment 'personal' is available to you", "group": ""},
    ),
    (
        "an unknown size",
        CONFIG,
        ALICE,
        request(size="huge"),
        None,
        {"size": "size 'huge' is not offered for environment 'pangeo'"},
    ),
    (
        "a size of another environment",
        CONFIG,
        BOB,
        request(environment="ml", size="large", group="ml"),
        None,
        {"size": "size 'large' is not offered for environment 'ml'"},
    ),
    (
        "a GPU size on an environment without GPUs",
        CONFIG,
        BOB,
        request(size="gpu", group="ml"),
        None,
        {"size": "size 'gpu' has GPUs, which environment 'pangeo' does not use"},
    ),
    (
        "a size over the budget",
        CONFIG,
        ALICE,
        request(size="large"),
        {"climate": budget(core=3)},
        {
            "size": "size 'large' does not fit the budget left of group 'climate': "
            "it buys 0.75 hours of it, and at least 1 are needed"
        },
    ),
    (
        "no size fits",
        CONFIG,
        ALICE,
        request(),
        {"climate": budget(core=0.5)},
        {"size": "no size of environment 'pangeo' fits the budget left of group 'climate'"},
    ),
    (
        "a spent GPU budget",
        CONFIG,
        BOB,
        request(environment="ml", size="gpu", group="ml"),
        {"ml": budget(core=100, gpu=0)},
        {"size": "size 'gpu' does not fit the budget left of group 'ml'"},
    ),
    (
        "a group the user is not in",
        CONFIG,
        ALICE,
        request(group="ml"),
        None,
        {"group": "you are not a member of group 'ml'"},
    ),
    (
        "a group that is not funded",
        FUNDED,
        DAVE,
        request(group="staff"),
        None,
        {"group": "group 'staff' cannot be charged"},
    ),
    (
        "several groups, none chosen",
        CONFIG,
        BOB,
        request(),
        None,
        {"group": "choose the group to charge"},
    ),
    (
        "no group at all",
        CONFIG,
        CAROL,
        request(),
        None,
        {"group": "none of your groups can be charged"},
    ),
    (
        "a hidden volume",
        CONFIG,
        ALICE,
        request(volumes=("ml-scratch",)),
        None,
        {"volumes": "no volume 'ml-scratch' is available to you"},
    ),
    (
        "an unknown volume and an always-mounted one",
        CONFIG,
        ALICE,
        request(volumes=("nope", "home")),
        None,
        {
            "volumes": "no volume 'nope' is available to you; "
            "volume 'home' is always mounted; it is not a choice"
        },
    ),
    (
        "a bad start page built without parsing",
        CONFIG,
        ALICE,
        request(urlpath="//evil.example.org"),
        None,
        {"urlpath": "no '//'"},
    ),
    (
        "every problem at once",
        CONFIG,
        ALICE,
        request(environment="nope", group="ml", volumes=("x",), urlpath="/.."),
        None,
        {"environment": "nope", "group": "ml", "volumes": "'x'", "urlpath": ".."},
    ),
    (
        "nothing visible",
        parse_launch_config(
            {"a": {"image": "a", "allowed_groups": ["x"]}},
            {"s": {"cpu": 1, "memory": "1G"}},
            {},
            backend="kube",
        ),
        ALICE,
        request(),
        None,
        {"environment": "no environment is available to you"},
    ),
]


@pytest.mark.parametrize(
    ("config", "member", "req", "budgets", "expected"),
    [c[1:] for c in REFUSALS],
    ids=[c[0] for c in REFUSALS],
)
def test_authorize_refuses_naming_each_field(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    budgets: Any,
    expected: dict[str, str],
) -> None:
    with pytest.raises(OptionsError) as info:
        authorize(config, member, req, budgets)
    assert set(info.value.errors) == set(expected)
    for field, fragment in expected.items():
        assert fragment in info.value.errors[field]


def test_a_hidden_environment_is_refused_like_a_missing_one() -> None:
    def refusal(name: str) -> str:
        with pytest.raises(OptionsError) as info:
            authorize(CONFIG, ALICE, request(environment=name), None)
        return info.value.errors["environment"].replace(repr(name), "NAME")

    assert refusal("ml") == refusal("does-not-exist")


def test_user_options_are_what_accounting_charges() -> None:
    launch = authorize(CONFIG, ALICE, request(volumes=("common-data",)), None)
    options = launch.user_options()
    assert options == {
        "environment": "pangeo",
        "size": "medium",
        "group": "climate",
        "volumes": ["common-data"],
        "cpu": 2.0,
        "mem": 4 * GIB,
        "gpus": 0,
        "profile": "pangeo",
        "image": "pangeo/pangeo-notebook:2024.01.01",
    }
    server = HubServer("alice", "", datetime(2026, 1, 1, tzinfo=UTC), user_options=options)
    start = session_start(server, StartDefaults(), {"climate"})
    assert (start.group, start.cpu, start.memory_bytes, start.gpus) == ("climate", 2.0, 4 * GIB, 0)
    assert (start.profile, start.image, start.notes) == ("pangeo", launch.environment.image, ())


def test_the_start_page_is_stored_only_when_chosen() -> None:
    chosen = authorize(CONFIG, ALICE, request(urlpath="/lab/tree/a.ipynb"), None)
    assert chosen.user_options()["urlpath"] == "/lab/tree/a.ipynb"
    default = authorize(CONFIG, ALICE, request(environment="climate"), None)
    assert default.urlpath == "/rstudio/"
    assert "urlpath" not in default.user_options()


def test_local_launches_store_no_image() -> None:
    config = parse_launch_config(
        {"lab": {}}, {"s": {"cpu": 1, "memory": "1G"}}, {}, backend="local"
    )
    options = authorize(config, ALICE, request(), None).user_options()
    assert "image" not in options
    assert options["profile"] == "lab"


def test_saved_options_authorize_to_the_same_launch() -> None:
    launch = authorize(
        CONFIG, BOB, request(environment="ml", group="ml", volumes=("ml-scratch",)), None
    )
    saved, messages = fallback(CONFIG, BOB, launch.user_options())
    assert messages == []
    assert authorize(CONFIG, BOB, saved, None) == launch


# (id, member, saved, expected request, messages)
FALLBACKS: list[tuple[str, Member, Any, LaunchRequest, list[str]]] = [
    ("nothing saved", ALICE, {}, request(), []),
    ("not an object", ALICE, ["pangeo"], request(), []),
    ("null", ALICE, None, request(), []),
    (
        "still valid",
        ALICE,
        {"environment": "climate", "size": "large", "group": "climate", "urlpath": "/lab"},
        request(environment="climate", size="large", group="climate", urlpath="/lab"),
        [],
    ),
    (
        "resolved keys are ignored",
        ALICE,
        {"cpu": 99, "mem": "x", "gpus": 8, "profile": "ml", "image": "evil", "other": 1},
        request(),
        [],
    ),
    (
        "a removed environment",
        ALICE,
        {"environment": "old"},
        request(),
        ["The environment 'old' you used last time is no longer offered."],
    ),
    (
        "an environment no longer visible",
        Member("alice", frozenset()),
        {"environment": "climate", "group": "climate"},
        request(),
        [
            "The environment 'climate' you used last time is no longer offered.",
            "You can no longer charge group 'climate', which you charged last time.",
        ],
    ),
    (
        "a removed size",
        ALICE,
        {"environment": "pangeo", "size": "xl"},
        request(environment="pangeo"),
        ["The size 'xl' you used last time is no longer offered for pangeo."],
    ),
    (
        "a size of the dropped environment",
        BOB,
        {"environment": "old", "size": "gpu"},
        request(),
        [
            "The environment 'old' you used last time is no longer offered.",
            "The size 'gpu' you used last time is no longer offered for pangeo.",
        ],
    ),
    (
        "a group the user left",
        ALICE,
        {"group": "ml", "size": "small"},
        request(size="small"),
        ["You can no longer charge group 'ml', which you charged last time."],
    ),
    (
        "volumes removed, hidden and now always mounted",
        ALICE,
        {"volumes": ["common-data", "old", "ml-scratch", "home"]},
        request(volumes=("common-data",)),
        [
            "The volume 'old' you chose last time is no longer offered.",
            "The volume 'ml-scratch' you chose last time is no longer offered.",
        ],
    ),
    (
        "garbage values",
        ALICE,
        {"environment": 5, "volumes": "common-data", "urlpath": "//evil", "size": "small"},
        request(size="small"),
        [
            "Your last choice of environment, 5, could not be used.",
            "Your last choice of volumes, 'common-data', could not be used.",
            "Your last choice of urlpath, '//evil', could not be used.",
        ],
    ),
    (
        "a huge value is not echoed",
        ALICE,
        {"group": "g" * 10_000},
        request(),
        ["Your last choice of group, '" + "g" * 59 + "...', could not be used."],
    ),
]


@pytest.mark.parametrize(
    ("member", "saved", "expected", "messages"),
    [c[1:] for c in FALLBACKS],
    ids=[c[0] for c in FALLBACKS],
)
def test_fallback(
    member: Member, saved: Any, expected: LaunchRequest, messages: list[str]
) -> None:
    assert fallback(CONFIG, member, saved) == (expected, messages)


# -- properties over random input -------------------------------------------------------

NAMES_IN_CONFIG = sorted({*ENVIRONMENTS, *SIZES, *VOLUMES, "climate", "ml", "staff", "x"})
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(NAMES_IN_CONFIG),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
VALUES = (
    st.sampled_from(NAMES_IN_CONFIG)
    | st.lists(st.sampled_from(NAMES_IN_CONFIG), max_size=4)
    | st.sampled_from(["/lab", "/rstudio/", "//evil", "/../hub", ""])
    | JSONISH
)
KEYS = st.sampled_from([*FIELDS, "repo", "cpu", "image", "server_name"]) | st.text(max_size=10)
# Mostly well-formed choices, so that many launches get through to the checks.
CHOICES = st.fixed_dictionaries(
    {},
    optional={
        "environment": st.sampled_from([*ENVIRONMENTS, "nope"]),
        "size": st.sampled_from([*SIZES, "nope"]),
        "group": st.sampled_from(["climate", "ml", "staff", "x"]),
        "volumes": st.lists(st.sampled_from([*VOLUMES, "nope"]), max_size=2, unique=True),
        "urlpath": st.sampled_from(["/lab", "/rstudio/", "/lab/tree/a.ipynb"]),
    },
)
RAW = st.one_of(st.dictionaries(KEYS, VALUES, max_size=7), CHOICES, CHOICES, CHOICES)
MEMBER = st.builds(
    Member,
    username=st.sampled_from(["alice", "bob", "mallory"]),
    groups=st.sampled_from([{"climate"}, {"ml"}, {"x"}]).map(frozenset)
    | st.frozensets(st.sampled_from(["climate", "ml", "staff", "x"])),
)
HOURS = st.none() | st.floats(min_value=-1, max_value=40, allow_nan=False)
BUDGETS = st.none() | st.dictionaries(
    st.sampled_from(["climate", "ml", "staff", "x"]),
    st.fixed_dictionaries({"core_hours": HOURS, "memory_gib_hours": HOURS, "gpu_hours": HOURS}),
)


def check_launch(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    budgets: dict[str, Budget] | None,
    launch: Launch,
) -> None:
    env, size = launch.environment, launch.size
    assert env in visible_environments(config, member)
    assert env is config.environments[env.name]
    assert size is config.sizes[size.name]
    assert size.name in env.sizes
    assert env.gpu or size.gpus == 0
    if budgets is not None and launch.group in budgets:
        assert size_fits(size, budgets[launch.group], config.min_hours)
    assert launch.group in chargeable_groups(config, member)
    allowed = allowed_volumes(config, member)
    for volume in launch.volumes:
        assert volume in allowed
        assert volume is config.volumes[volume.name]
        assert not volume.optional or volume.name in (req.volumes or ())
    assert urlpath_problem(launch.urlpath) is None
    assert launch.user_options().get("image") == env.image


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RAW, MEMBER, BUDGETS, st.sampled_from([CONFIG, FUNDED]))
def test_random_options_are_refused_or_launch_only_what_policy_allows(
    raw: dict[str, object], member: Member, budgets: dict[str, Budget] | None, config: LaunchConfig
) -> None:
    refusal: OptionsError | None = None
    try:
        req = parse_options(raw)
        launch = authorize(config, member, req, budgets)
    except OptionsError as e:
        refusal = e
    event("refused" if refusal else "launched")
    if refusal is not None:
        assert refusal.errors, "a refusal names at least one field"
    else:
        check_launch(config, member, req, budgets, launch)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=7) | JSONISH, MEMBER)
def test_fallback_never_fails_and_leaves_a_launchable_request(saved: Any, member: Member) -> None:
    req, messages = fallback(CONFIG, member, saved)
    assert all(isinstance(m, str) and m.endswith(".") for m in messages)
    single = Member(member.username, frozenset({"climate"}))  # one group to charge
    req, _ = fallback(CONFIG, single, saved)
    launch = authorize(CONFIG, single, req, None)  # whatever was saved: no refusal
    check_launch(CONFIG, single, req, None, launch)


def test_stored_options_split_into_choices_and_what_the_launch_charges() -> None:
    launch = authorize(CONFIG, ALICE, LaunchRequest(), None)
    stored = launch.user_options()
    choices, charged = split_charged(stored)
    assert set(charged) <= {"cpu", "mem", "gpus", "profile", "image"}
    assert charged
    assert not set(charged) & set(choices)  # type: ignore[arg-type]
    assert authorize(CONFIG, ALICE, parse_options(choices), None) == launch  # type: ignore[arg-type]
    check_charged(charged, launch)  # what was stored agrees with the launch
    assert split_charged("not a mapping") == ("not a mapping", {})


@pytest.mark.parametrize(
    ("key", "value"), [("cpu", 64), ("mem", 1), ("gpus", 8), ("image", "evil/miner:latest")]
)
def test_charged_keys_that_differ_from_the_launch_are_refused(key: str, value: object) -> None:
    launch = authorize(CONFIG, ALICE, LaunchRequest(), None)
    with pytest.raises(OptionsError) as refused:
        check_charged({key: value}, launch)
    assert list(refused.value.errors) == [key]
    assert "is set by the environment and size" in refused.value.errors[key]
