"""decide_access and pi_groups: tables of cases."""

import pytest

from eohub.domain.identity.access import (
    AccessDecision,
    AccessPolicy,
    PIRules,
    decide_access,
    pi_groups,
    refresh_outcome,
)

F = frozenset
POLICY = AccessPolicy(
    allowed_users=F({"guest"}),
    blocked_users=F({"mallory"}),
    admin_users=F({"root-admin"}),
    allowed_groups=F({"researchers", "climate"}),
    blocked_groups=F({"suspended"}),
    admin_groups=F({"hub-admins"}),
)


@pytest.mark.parametrize(
    ("username", "groups", "policy", "allowed", "admin"),
    [
        ("alice", {"researchers"}, POLICY, True, False),
        ("alice", {"researchers", "hub-admins"}, POLICY, True, True),
        ("bob", {"other"}, POLICY, False, False),
        ("guest", set(), POLICY, True, False),
        ("root-admin", set(), POLICY, True, True),
        ("mallory", {"researchers", "hub-admins"}, POLICY, False, None),
        ("carol", {"climate", "suspended"}, POLICY, False, None),
        # allow_all cannot bypass allowed_groups, nor any block.
        ("bob", {"other"}, AccessPolicy(allow_all=True, allowed_groups=F({"x"})), False, None),
        ("bob", {"x"}, AccessPolicy(allow_all=True, blocked_groups=F({"x"})), False, None),
        (
            "mallory",
            set(),
            AccessPolicy(allow_all=True, blocked_users=F({"mallory"})),
            False,
            None,
        ),
        # allow_all alone lets any authenticated user in; admin is left unmanaged.
        ("bob", set(), AccessPolicy(allow_all=True), True, None),
        ("bob", set(), AccessPolicy(), False, None),
        # Removal from the admin group revokes admin when admin_groups is managed.
        (
            "alice",
            {"researchers"},
            AccessPolicy(allowed_groups=F({"researchers"}), admin_groups=F({"a"})),
            True,
            False,
        ),
    ],
)
def test_decide_access(
    username: str, groups: set[str], policy: AccessPolicy, allowed: bool, admin: bool | None
) -> None:
    decision = decide_access(username, F(groups), policy)
    assert (decision.allowed, decision.admin) == (allowed, admin)
    assert decision.reason


def test_reasons_name_the_group() -> None:
    assert decide_access("carol", F({"suspended"}), POLICY) == AccessDecision(
        False, None, "member of blocked group 'suspended'", blocked=True
    )


@pytest.mark.parametrize(
    ("username", "groups", "blocked"),
    [
        ("bob", {"other"}, False),  # outside the allowed groups: not a block
        ("carol", {"climate", "suspended"}, True),
        ("mallory", {"researchers"}, True),
        ("alice", {"researchers"}, False),  # allowed
    ],
)
def test_blocks_are_told_apart_from_missing_permission(
    username: str, groups: set[str], blocked: bool
) -> None:
    assert decide_access(username, F(groups), POLICY).blocked is blocked


@pytest.mark.parametrize(
    ("username", "groups", "withdrawn", "kept_groups", "admin"),
    [
        # Still allowed: the source's groups replace the hub's (lost ones go too).
        ("alice", {"researchers", "hub-admins"}, False, {"researchers", "hub-admins"}, True),
        ("alice", {"researchers"}, False, {"researchers"}, False),  # left the admin group
        ("guest", {"other"}, False, {"other"}, False),
        # Withdrawn: nothing is kept, whatever groups the source still lists.
        ("alice", set(), True, set(), False),  # removed from every group
        ("bob", {"other", "staff"}, True, set(), False),
        ("carol", {"climate", "suspended"}, True, set(), False),  # a block applies
        ("mallory", {"researchers", "hub-admins"}, True, set(), False),  # blocked user
    ],
)
def test_refresh_outcome(
    username: str, groups: set[str], withdrawn: bool, kept_groups: set[str], admin: bool | None
) -> None:
    outcome = refresh_outcome(username, F(groups), POLICY)
    assert outcome.withdrawn is withdrawn
    assert outcome.groups == kept_groups
    assert outcome.admin is admin
    assert outcome.decision == decide_access(username, F(groups), POLICY)


def test_refresh_outcome_leaves_unmanaged_admin_alone() -> None:
    # No admin_groups: admin is the hub's to keep, for allowed users only.
    policy = AccessPolicy(allowed_groups=F({"researchers"}))
    assert refresh_outcome("alice", F({"researchers"}), policy).admin is None
    assert refresh_outcome("alice", F(), policy).admin is False


@pytest.mark.parametrize(
    ("username", "groups", "directory", "roles", "expected"),
    [
        ("alice", {"climate"}, (), {}, {"climate"}),  # from config
        ("bob", {"climate"}, (), {}, set()),
        ("bob", {"eo"}, ("eo",), {}, {"eo"}),  # from the directory
        ("bob", set(), ("eo",), {}, set()),  # a PI must still be a member
        ("dave", {"vo"}, (), {"vo": F({"manager"})}, {"vo"}),  # from an entitlement role
        ("dave", {"vo"}, (), {"vo": F({"member"})}, set()),
        ("dave", set(), (), {"vo": F({"manager"})}, set()),
    ],
)
def test_pi_groups(
    username: str,
    groups: set[str],
    directory: tuple[str, ...],
    roles: dict[str, frozenset[str]],
    expected: set[str],
) -> None:
    rules = PIRules(configured={"climate": F({"alice"})}, roles=F({"manager", "pi"}))
    assert (
        pi_groups(username, F(groups), rules, directory_pi_of=directory, group_roles=roles)
        == expected
    )
