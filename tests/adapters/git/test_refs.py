"""Ref resolution against real git over loopback (git http-backend), and its guards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eohub.adapters.git.refs import RefResolver, pick
from eohub.domain.repos.policy import RepoCheck, RepoPolicy
from eohub.domain.repos.specs import RepoError, RepoProviders
from tests.support.git_server import Repo, git_http_server, make_repo, silent_server

PROVIDERS = RepoProviders.default()
LOOPBACK = RepoPolicy(allow_http=True, allow_private_hosts=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Repo]]:
    root = tmp_path_factory.mktemp("git")
    repo = make_repo(root)
    with git_http_server(root) as url:
        yield url, repo


def check(url: str, ref: str, policy: RepoPolicy = LOOPBACK) -> RepoCheck:
    return policy.check(PROVIDERS.from_fields("git", url, ref), PROVIDERS)


@pytest.mark.parametrize(
    ("ref", "expected", "source"),
    [
        ("main", "main", "refs/heads/main"),
        ("dev", "dev", "refs/heads/dev"),
        ("v1", "v1", "refs/tags/v1"),  # the tag's commit, not the tag object
        ("HEAD", "main", "HEAD"),
    ],
)
async def test_branches_tags_and_head_resolve_to_their_commits(
    served: tuple[str, Repo], ref: str, expected: str, source: str
) -> None:
    url, repo = served
    resolved = await RefResolver(timeout=10).resolve(check(f"{url}/{repo.name}", ref))
    assert resolved.commit == getattr(repo, expected)
    assert resolved.source == source


async def test_a_commit_is_used_as_it_is_without_asking_the_server(
    served: tuple[str, Repo],
) -> None:
    url, repo = served
    resolver = RefResolver()
    resolved = await resolver.resolve(check(f"{url}/{repo.name}", repo.dev))
    assert (resolved.commit, resolved.source, resolver.runs) == (repo.dev, "commit", 0)


async def test_a_missing_ref_and_a_missing_repository_say_which(
    served: tuple[str, Repo],
) -> None:
    url, repo = served
    resolver = RefResolver(timeout=10)
    with pytest.raises(RepoError) as no_ref:
        await resolver.resolve(check(f"{url}/{repo.name}", "no-such-branch"))
    assert no_ref.value.errors == {
        "ref": "'no-such-branch' is not a branch or tag of 127.0.0.1/demo"
    }
    with pytest.raises(RepoError) as no_repo:
        await resolver.resolve(check(f"{url}/missing.git", "main"))
    assert "there is no repository at" in no_repo.value.errors["repo"]


async def test_answers_are_cached_briefly(served: tuple[str, Repo]) -> None:
    url, repo = served
    now = [0.0]
    resolver = RefResolver(timeout=10, cache_seconds=60, clock=lambda: now[0])
    first = await resolver.resolve(check(f"{url}/{repo.name}", "main"))
    again = await resolver.resolve(check(f"{url}/{repo.name}", "main"))
    assert (first, resolver.runs) == (again, 1)
    now[0] = 61.0
    await resolver.resolve(check(f"{url}/{repo.name}", "main"))
    assert resolver.runs == 2


async def test_a_server_that_never_answers_times_out_cleanly() -> None:
    with silent_server() as url:
        resolver = RefResolver(timeout=1.5)
        with pytest.raises(RepoError) as hung:
            await resolver.resolve(check(f"{url}/demo.git", "main"))
    assert hung.value.errors == {"repo": "the git server did not answer within 1.5 seconds"}


async def test_a_host_name_is_resolved_and_must_not_be_private(
    served: tuple[str, Repo],
) -> None:
    url, repo = served
    named = url.replace("127.0.0.1", "localhost") + f"/{repo.name}"
    strict = RepoPolicy(allow_http=True)
    with pytest.raises(RepoError) as refused:
        await RefResolver().resolve(check(named, "main", strict))
    assert "loopback, private or reserved address" in refused.value.errors["repo"]
    # Allowed, git is pinned to the address that was checked.
    resolved = await RefResolver(timeout=10).resolve(check(named, "main"))
    assert resolved.commit == repo.main


async def test_no_process_starts_for_a_hostile_spec(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for url in (f"ext::sh -c touch% {marker}", f"--upload-pack=touch {marker}"):
        with pytest.raises(RepoError):
            PROVIDERS.from_fields("git", url, "main")
    with pytest.raises(RepoError):
        PROVIDERS.from_fields("git", "https://example.org/a.git", "--upload-pack=x")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("listing", "ref", "commit"),
    [
        (f"{'a' * 40}\trefs/tags/v1\n{'b' * 40}\trefs/tags/v1^{{}}\n", "v1", "b" * 40),
        (f"{'c' * 40}\trefs/heads/main\n", "main", "c" * 40),
        (f"{'c' * 40}\trefs/heads/other\n", "main", None),
        ("garbage\n\n", "main", None),
    ],
)
def test_ls_remote_output_is_read_exactly(listing: str, ref: str, commit: str | None) -> None:
    found = pick(listing, ref)
    assert (found.commit if found else None) == commit
