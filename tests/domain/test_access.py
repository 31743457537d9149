"""decide_access and pi_groups: tables of cases."""

import pytest

from eohub.domain.access import AccessDecision, AccessPolicy, PIRules, decide_access, pi_groups

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
        False, None, "member of blocked group 'suspended'"
    )


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
