"""Cloning a commit into a workspace over real git (git http-backend on loopback)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from eohub.adapters.git.clone import clone_commit
from eohub.domain.repos.specs import RepoError
from tests.support.git_server import Repo, git_http_server, make_repo, silent_server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Repo]]:
    root = tmp_path_factory.mktemp("git")
    repo = make_repo(root)
    with git_http_server(root) as url:
        yield f"{url}/demo.git", repo


def head(path: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".eohub-clone-"))


@pytest.mark.parametrize("which", ["main", "dev", "v1"])
async def test_the_commit_is_checked_out_in_a_new_folder(
    served: tuple[str, Repo], tmp_path: Path, which: str
) -> None:
    url, repo = served
    commit = getattr(repo, which)
    target = await clone_commit(url, commit, tmp_path / "work" / "demo")
    assert head(target) == commit
    assert (target / "README.md").read_text() == {
        "main": "second\n",
        "dev": "dev\n",
        "v1": "first\n",
    }[which]
    assert leftovers(tmp_path / "work") == []


async def test_an_existing_folder_is_never_touched(
    served: tuple[str, Repo], tmp_path: Path
) -> None:
    url, repo = served
    target = tmp_path / "demo"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        await clone_commit(url, repo.main, target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert leftovers(tmp_path) == []


async def test_an_unknown_commit_fails_clearly_and_leaves_nothing(
    served: tuple[str, Repo], tmp_path: Path
) -> None:
    url, _ = served
    with pytest.raises(RepoError) as caught:
        await clone_commit(url, "0" * 40, tmp_path / "demo")
    assert "could not clone" in caught.value.errors["repo"]
    assert not (tmp_path / "demo").exists()
    assert leftovers(tmp_path) == []


async def test_a_failed_clone_logs_gits_reason_for_the_admin(
    served: tuple[str, Repo], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = served
    with (
        caplog.at_level(logging.WARNING, logger="eohub.adapters.git.clone"),
        pytest.raises(RepoError),
    ):
        await clone_commit(url, "0" * 40, tmp_path / "demo")
    (record,) = caplog.records
    assert record.getMessage().startswith(f"git could not clone {url} at commit 000000000000: ")
    assert "0000000000000000000000000000000000000000" in record.getMessage()  # git's own words


async def test_a_server_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    with silent_server() as url, pytest.raises(RepoError) as caught:
        await clone_commit(f"{url}/demo.git", "a" * 40, tmp_path / "demo", time_limit=1)
    assert "longer than 1 seconds" in caught.value.errors["repo"]
    assert leftovers(tmp_path) == []


async def test_a_ref_that_is_not_a_commit_is_refused_before_git_runs(tmp_path: Path) -> None:
    with pytest.raises(RepoError):
        await clone_commit("https://example.org/x.git", "--upload-pack=x", tmp_path / "demo")
    assert not leftovers(tmp_path)
    assert not (tmp_path / "demo").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root")
async def test_the_clone_is_handed_to_its_owner_without_following_links(
    served: tuple[str, Repo], tmp_path: Path
) -> None:
    url, repo = served
    target = await clone_commit(url, repo.main, tmp_path / "demo", owner=(4321, 4321))
    owners = {os.lstat(p).st_uid for p in [target, *target.rglob("*")]}
    assert owners == {4321}
