"""Which group pays for a user's storage, which names can be sampled, and path layouts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.storage.owners import (
    Layout,
    LayoutError,
    Owner,
    charge_group,
    name_problem,
    round_samples,
    split_template,
)

MAPPING = {"alice": "climate", "zed": ""}

# (case, user, source group, hub groups (None: not read), priority, default, charged)
CHARGE_CASES = [
    ("the source's group wins over everything", "alice", "astro", {"eo"}, ["eo"], "d", "astro"),
    ("the explicit map wins over hub groups", "alice", None, {"eo"}, ["eo"], "d", "climate"),
    ("an empty source group names none", "alice", "", None, [], "d", "climate"),
    ("an explicit map to no group", "zed", None, {"eo"}, [], "d", ""),
    ("one hub group is charged", "bob", None, {"eo"}, [], "d", "eo"),
    (
        "several: the first of the priority",
        "bob",
        None,
        {"eo", "astro"},
        ["astro", "eo"],
        "",
        "astro",
    ),
    (
        "several: priority order, not the set's",
        "bob",
        None,
        {"eo", "astro"},
        ["eo", "astro"],
        "",
        "eo",
    ),
    ("several, none in the priority: default", "bob", None, {"eo", "astro"}, ["x"], "d", "d"),
    ("several, no priority: default", "bob", None, {"eo", "astro"}, [], "", ""),
    ("priority group the user is not in", "bob", None, {"eo"}, ["astro"], "d", "eo"),
    ("no hub groups: default", "bob", None, set(), ["eo"], "d", "d"),
    ("hub groups not read: default", "bob", None, None, ["eo"], "d", "d"),
    ("nothing at all: no group", "bob", None, None, [], "", ""),
]


@pytest.mark.parametrize(
    ("user", "source", "hub", "priority", "default", "charged"),
    [case[1:] for case in CHARGE_CASES],
    ids=[case[0] for case in CHARGE_CASES],
)
def test_charge_group(
    user: str,
    source: str | None,
    hub: set[str] | None,
    priority: list[str],
    default: str,
    charged: str,
) -> None:
    assert (
        charge_group(
            user,
            source_group=source,
            user_groups=MAPPING,
            hub_groups=hub,
            group_priority=priority,
            default_group=default,
        )
        == charged
    )


NAME_CASES = [
    ("alice", "user", None),
    ("Zoë Smith", "user", None),
    ("a" * 255, "user", None),
    ("a" * 256, "user", "is empty, longer than 255 characters or holds control characters"),
    ("", "user", "is empty, longer than 255 characters or holds control characters"),
    ("bad\nname", "user", "is empty, longer than 255 characters or holds control characters"),
    ("tab\there", "group", "is empty, longer than 255 characters or holds control characters"),
    (" padded", "user", "starts or ends with white space"),
    ("trailing ", "group", "starts or ends with white space"),
    ("caf\udce9", "user", "is not valid UTF-8"),  # b"caf\xe9" (Latin-1) read by os.listdir
    ("climate", "group", None),
]


@pytest.mark.parametrize(("name", "kind", "problem"), NAME_CASES)
def test_name_problem(name: str, kind: str, problem: str | None) -> None:
    assert name_problem(name, kind) == problem


# (layout, names at each level, the fields captured, or None: not a match)
LAYOUT_CASES = [
    ("{user}", ["alice"], {"user": "alice"}),
    ("{username}", ["alice"], {"user": "alice"}),
    ("{group}", ["climate"], {"group": "climate"}),
    ("{group}/{user}", ["climate", "alice"], {"group": "climate", "user": "alice"}),
    ("{user}/work", ["alice", "work"], {"user": "alice"}),
    ("{user}/work", ["alice", "play"], None),
    ("home-{user}", ["home-alice"], {"user": "alice"}),
    ("home-{user}", ["alice"], None),
    ("{user}.ws", ["alice.smith.ws"], {"user": "alice.smith"}),
]


@pytest.mark.parametrize(("text", "names", "fields"), LAYOUT_CASES)
def test_layouts_capture_users_and_groups(
    text: str, names: list[str], fields: dict[str, str] | None
) -> None:
    layout = Layout.parse(text)
    found: dict[str, str] = {}
    for segment, name in zip(layout.segments, names, strict=True):
        value = segment.match(name)
        if value is None:
            assert fields is None
            return
        if segment.field:
            found[segment.field] = value
    assert found == fields


BAD_LAYOUTS = [
    ("", "must be a relative path"),
    ("/home/{user}", "must be a relative path"),
    ("users", "must use {user} or {group}"),
    ("{user}/{user}", "names {user} twice"),
    ("{group}/../{user}", "empty, '.' or '..' folder"),
    ("{user}//x", "empty, '.' or '..' folder"),
    ("{uid}", "unknown placeholder {uid}"),
    ("{group}-{user}", "one placeholder per folder"),
    ("{user", "unbalanced brace"),
    ("{user}}", "unbalanced brace"),
]


@pytest.mark.parametrize(("text", "message"), BAD_LAYOUTS)
def test_bad_layouts_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(LayoutError, match=message.replace("{", r"\{").replace("}", r"\}")):
        Layout.parse(text)


TEMPLATES = [
    ("/srv/eohub/workspaces/{username}", "/srv/eohub/workspaces", ("user",)),
    ("/srv/{group}/{username}", "/srv", ("group", "user")),
    ("/home/{username}/work", "/home", ("user", None)),
    ("/{username}", "/", ("user",)),
]


@pytest.mark.parametrize(("template", "root", "fields"), TEMPLATES)
def test_workspace_templates_split_into_root_and_layout(
    template: str, root: str, fields: tuple[str | None, ...]
) -> None:
    found_root, layout = split_template(template)
    assert found_root == root
    assert tuple(s.field for s in layout.segments) == fields


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("srv/{username}", "must be absolute"),
        ("/srv/workspaces", "must use {username}"),
        ("/srv/{group}", "must use {username}"),
        ("/srv/{username}/{username}", "twice"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(LayoutError, match=message.replace("{", r"\{").replace("}", r"\}")):
        split_template(template)


T1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_round_is_one_sample_per_user_group_and_source_at_one_time() -> None:
    charged = [
        (Owner("bob", None, 10, 1, "/export/home"), "eo"),
        (Owner("alice", "climate", 100, 3, "/export/home"), "climate"),
        # Two roots are two sources: never added together, so that one missing from a
        # later round keeps its last figure instead of looking like a shrink.
        (Owner("alice", None, 50, 2, "/scratch"), "climate"),
        (Owner("alice", None, 7, 1, "/scratch"), ""),
        # Two parts of one source (two folders of one root) are that source's whole.
        (Owner("carol", None, 5, 1, "pvc:hub/claim-carol"), "eo"),
        (Owner("carol", None, 6, 2, "pvc:hub/claim-carol"), "eo"),
    ]
    assert round_samples(charged, T1) == [
        StorageSample("alice", "", 7, T1, 1, source="/scratch"),
        StorageSample("alice", "climate", 100, T1, 3, source="/export/home"),
        StorageSample("alice", "climate", 50, T1, 2, source="/scratch"),
        StorageSample("bob", "eo", 10, T1, 1, source="/export/home"),
        StorageSample("carol", "eo", 11, T1, 3, source="pvc:hub/claim-carol"),
    ]
