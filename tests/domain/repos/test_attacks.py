"""Hostile repository specs are refused, whichever way they come in.

A fixed corpus of known attacks goes through every way in: a launch link
(``RepoProviders.parse_link``), the form (``RepoProviders.from_fields``) and the admin's
policy (``RepoPolicy.check``). It holds the CVE-2021-39159 pattern (BinderHub's git
provider passed a repository or ref that git read as an option), other git transports,
encoding, control-character and Unicode tricks, path traversal, refs git refuses,
overlong input, SSRF addresses and allow/deny-list evasion. Each must fail with a
RepoError (a FieldErrors, so a 400 with field errors) naming the right field in words
a scientist can read. Hypothesis then feeds open-ended input to the same ways in and
checks everything that is accepted: the invariants are written out here, independently
of the code under test. ``tests/adapters/git/test_refs_attacks.py`` drives the same
corpus on to git.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.repos.images import PREFIX, image_name, prefix_problem
from eohub.domain.repos.policy import RepoPolicy, address_allowed
from eohub.domain.repos.specs import RepoSpec
from tests.domain.repos.attack_cases import (
    FORM_ATTACKS,
    INTERNAL,
    LINK_ATTACKS,
    LINKED_FORM_ATTACKS,
    LISTS,
    OPEN,
    POLICIES,
    POLICY_ATTACKS,
    PROVIDERS,
    SETTINGS,
    attempt,
    launch,
    refused,
)
from tests.domain.repos.hostile_input import (
    COMMITS,
    FIELDS,
    IMAGE_REFERENCE,
    LINKS,
    assert_accepted_is_safe,
    follow,
)


@pytest.mark.parametrize(("provider", "repo", "ref", "field", "says"), FORM_ATTACKS)
def test_form_attacks_are_refused(
    provider: str, repo: str, ref: str, field: str, says: str
) -> None:
    refused(lambda: launch(OPEN, fields=(provider, repo, ref)), field, says)


@pytest.mark.parametrize(("link", "field", "says"), LINK_ATTACKS + LINKED_FORM_ATTACKS)
def test_link_attacks_are_refused(link: str, field: str, says: str) -> None:
    refused(lambda: launch(OPEN, link=link), field, says)


@pytest.mark.parametrize(("provider", "repo", "policy", "says"), POLICY_ATTACKS)
def test_policy_refuses_internal_addresses_and_list_evasion(
    provider: str, repo: str, policy: str, says: str
) -> None:
    spec = PROVIDERS.from_fields(provider, repo, "main")
    refused(lambda: launch(POLICIES[policy], fields=(provider, repo, "main")), "repo", says)
    refused(lambda: launch(POLICIES[policy], link=PROVIDERS.link(spec)), "repo", says)


def test_the_same_hosts_and_repositories_are_allowed_when_written_plainly() -> None:
    # The lists above refuse the tricks, not everything: their plain neighbours pass.
    for provider, repo in [
        ("gh", "pangeo-data/pangeo-docker-images"),
        ("gl", "group/sub-project"),
        ("git", "https://GIT.example.org:8443/eo/tools.git"),
        ("git", "https://github.com/unbanned/repo"),
        ("git", "https://git.example.org/secret/project2"),
    ]:
        check = launch(LISTS, fields=(provider, repo, "main"))
        assert check.spec.url.startswith("https://")
    # Site-local and other internal addresses only where the admin allows private hosts.
    check = launch(OPEN, fields=("git", "http://[fec0::1]/x", "main"))
    assert (check.host, check.needs_resolution) == ("fec0::1", False)


@SETTINGS
@given(link=LINKS, commit=COMMITS)
def test_any_link_is_refused_or_safe(link: str, commit: str) -> None:
    spec, refusal = attempt(lambda: PROVIDERS.parse_link(link))
    if spec is None:
        assert refusal is not None
        assert set(refusal.errors) <= {"provider", "spec", "repo", "ref"}
        return
    follow(spec, commit)


@SETTINGS
@given(fields=FIELDS, commit=COMMITS)
def test_any_form_is_refused_or_safe(fields: tuple[str, str, str], commit: str) -> None:
    spec, refusal = attempt(lambda: PROVIDERS.from_fields(*fields))
    if spec is None:
        assert refusal is not None
        assert set(refusal.errors) <= {"provider", "repo", "ref"}
        return
    follow(spec, commit)


@SETTINGS
@given(
    host=st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
    private=st.booleans(),
)
def test_any_ip_literal_is_refused_or_allowed_by_address_allowed(host: str, private: bool) -> None:
    policy = RepoPolicy(allow_private_hosts=private)
    check, refusal = attempt(lambda: launch(policy, fields=("git", f"https://{host}/x", "main")))
    if check is None:
        assert refusal is not None
        assert INTERNAL in refusal.errors["repo"]
        assert not address_allowed(host.strip("[]"), allow_private=private)
        return
    assert address_allowed(check.host, allow_private=private)
    ip = ipaddress.ip_address(check.host)
    assert not ip.is_multicast
    assert not ip.is_unspecified
    assert private or not (ip.is_loopback or ip.is_private or ip.is_link_local)


@SETTINGS
@given(
    slug=st.text(max_size=300) | st.sampled_from(["", "_", "-", "_group-x", ".x", "\u00e9"]),
    prefix=st.from_regex(PREFIX, fullmatch=True),
    commit=COMMITS,
)
def test_any_slug_and_accepted_prefix_make_a_valid_image_reference(
    slug: str, prefix: str, commit: str
) -> None:
    if prefix_problem(prefix) is not None:
        return
    match = IMAGE_REFERENCE.fullmatch(image_name(prefix, slug, commit))
    assert match
    assert match["tag"] == commit
    assert len(match["name"]) <= 255


@pytest.mark.parametrize(
    "prefix", ["a//", "a/./", "a/-b/", "a..", "a/.", "a.-", "registry.example.org//r2d-"]
)
def test_prefixes_that_cannot_start_an_image_name_are_refused(prefix: str) -> None:
    assert prefix_problem(prefix) is not None


def test_the_invariants_catch_what_they_should() -> None:
    # The oracle itself: a spec built around the parser fails it.
    bad = RepoSpec("git", "https://x.org/-u", "https://x.org/-u", "main")
    with pytest.raises(AssertionError):
        assert_accepted_is_safe(bad)
    assert not IMAGE_REFERENCE.fullmatch("quay.io/org/-5fgroup:" + "0" * 40)
    assert IMAGE_REFERENCE.fullmatch("localhost:5000/a/b--c:" + "0" * 40)
