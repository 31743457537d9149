"""Image names in BinderHub's convention: literal names derived by hand from builder.py."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.repos.images import escape, image_name, repo_image_name, safe_build_slug
from eohub.domain.repos.specs import RepoError, RepoProviders

PROVIDERS = RepoProviders.default()
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PREFIX = "registry.example.org/binder/r2d-"


# Derived by hand: slug = provider.get_build_slug(); each non-alphanumeric UTF-8 byte
# becomes '-' + uppercase hex; then '-' + sha256(slug)[:6]; then '_'->'-' and lowercase.
@pytest.mark.parametrize(
    ("provider", "repo", "expected"),
    [
        # slug "binder-examples-requirements", sha256 55ab5c...
        (
            "gh",
            "binder-examples/requirements",
            PREFIX + "binder-2dexamples-2drequirements-55ab5c:" + COMMIT,
        ),
        # ".git" is dropped, as GitHubRepoProvider does
        (
            "gh",
            "binder-examples/requirements.git",
            PREFIX + "binder-2dexamples-2drequirements-55ab5c:" + COMMIT,
        ),
        # GitLab slug "group-sub_-project-repo" (dashes become "_-"), sha256 a0005e...
        (
            "gl",
            "group/sub-project/repo",
            PREFIX + "group-2dsub-5f-2dproject-2drepo-a0005e:" + COMMIT,
        ),
        # plain git: the slug is the URL itself, sha256 d94470...
        (
            "git",
            "https://example.org/a/b.git",
            PREFIX + "https-3a-2f-2fexample-2eorg-2fa-2fb-2egit-d94470:" + COMMIT,
        ),
    ],
)
def test_image_names_match_binderhub(provider: str, repo: str, expected: str) -> None:
    spec = PROVIDERS.from_fields(provider, repo, "main")
    assert repo_image_name(PROVIDERS, spec, COMMIT, PREFIX) == expected


def test_escaping_is_per_utf8_byte_in_unpadded_hex() -> None:
    # "Ü" is C3 9C, "ï" is C3 AF, newline is 0A written "-A"; sha256 c14532...
    assert escape("Owner-Ünïcode\n") == "Owner-2D-C3-9Cn-C3-AFcode-A"
    assert image_name("", "Owner-Ünïcode", COMMIT) == f"owner-2d-c3-9cn-c3-afcode-c14532:{COMMIT}"


def test_long_slugs_are_cut_to_255_with_the_hash_kept() -> None:
    name = image_name(PREFIX, "x" * 400, COMMIT)
    repository, tag = name.split(":")
    assert tag == COMMIT
    assert len(repository) == 255
    assert repository.startswith(PREFIX + "xxx")
    assert repository[-7:] == "-" + safe_build_slug("x" * 400, 300)[-6:]


@pytest.mark.parametrize(
    ("prefix", "commit", "where"),
    [
        ("Registry/UPPER", COMMIT, "image_prefix"),
        ("registry.example.org/a b", COMMIT, "image_prefix"),
        ("-registry", COMMIT, "image_prefix"),
        (PREFIX, "main", "commit"),
        (PREFIX, COMMIT.upper(), "commit"),
    ],
)
def test_bad_prefixes_and_commits_are_refused(prefix: str, commit: str, where: str) -> None:
    with pytest.raises(RepoError) as caught:
        image_name(prefix, "a-b", commit)
    assert caught.value.field == where


def test_empty_and_port_prefixes_are_fine() -> None:
    assert image_name("", "a", COMMIT).startswith("a-ca9781:")
    assert image_name("localhost:5000/", "a", COMMIT).startswith("localhost:5000/a-")


# A slug whose escape starts with '-' (GitLab's "_group/x" is "-5Fgroup-2Dx") where a
# name component starts: BinderHub would write "quay.io/org/-5fgroup...", which is no
# valid image reference; the dashes go, the hash stays. sha256("_group-x") is cbf2da...,
# sha256("") e3b0c4..., sha256("-x") a42096...
@pytest.mark.parametrize(
    ("prefix", "slug", "expected"),
    [
        ("quay.io/org/", "_group-x", "quay.io/org/5fgroup-2dx-cbf2da"),
        ("", "_group-x", "5fgroup-2dx-cbf2da"),
        (
            "registry.example.org/binder.",
            "_group-x",
            "registry.example.org/binder.5fgroup-2dx-cbf2da",
        ),
        ("localhost:5000/", "-x", "localhost:5000/2dx-a42096"),
        ("quay.io/org/", "", "quay.io/org/e3b0c4"),
        # Elsewhere BinderHub's name is valid and kept: dashes may follow dashes.
        (PREFIX, "_group-x", PREFIX + "-5fgroup-2dx-cbf2da"),
        ("eo/r2d_", "_group-x", "eo/r2d--5fgroup-2dx-cbf2da"),
        ("eo/r2d", "_group-x", "eo/r2d-5fgroup-2dx-cbf2da"),
    ],
)
def test_a_slug_starting_a_name_component_starts_with_a_letter_or_digit(
    prefix: str, slug: str, expected: str
) -> None:
    assert image_name(prefix, slug, COMMIT) == f"{expected}:{COMMIT}"


def test_a_gitlab_namespace_starting_with_underscore_gets_a_valid_image() -> None:
    spec = PROVIDERS.from_fields("gl", "_group/x", "main")
    assert repo_image_name(PROVIDERS, spec, COMMIT, "quay.io/org/") == (
        f"quay.io/org/5fgroup-2dx-cbf2da:{COMMIT}"
    )


@given(st.text(max_size=300))
def test_escape_matches_escapism(text: str) -> None:
    # escapism is a KubeSpawner dependency, so it is always installed with eohub; the
    # domain keeps its own stdlib copy of the algorithm.
    import escapism

    expected = escapism.escape(
        text, safe=set(string.ascii_letters + string.digits), escape_char="-"
    )
    assert escape(text) == expected


@given(st.text(max_size=300), st.sampled_from(["", PREFIX, "quay.io/org/"]))
def test_image_names_are_always_valid_references(slug: str, prefix: str) -> None:
    name = image_name(prefix, slug, COMMIT)
    repository, _, tag = name.rpartition(":")
    assert tag == COMMIT
    assert len(repository) <= 255
    assert repository == repository.lower()
    rest = repository[len(prefix) :]
    assert set(rest) <= set(string.ascii_lowercase + string.digits + "-")
