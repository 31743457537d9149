"""FilesystemSampler on real trees: layouts, names it must skip, bounds, the XFS fast path,
and the users' hub groups read from a real JupyterHub.

XFS is not available here: the fast path runs a stand-in ``xfs_quota`` (a script on
disk) that prints a recorded report, fails, or hangs, and the sampler must read the
report or fall back to the walk. Sizes from the walk are compared with ``du``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from traitlets import TraitError

from eohub.domain.accounting.session_record import StorageSample
from eohub.storage.filesystem import FilesystemSampler
from eohub.storage.slugs import kubespawner_slug
from tests.storage.test_walk import du, write
from tests.support.hub import Hub


def sampler(**traits: object) -> FilesystemSampler:
    return FilesystemSampler(**traits)


def measure(s: FilesystemSampler) -> dict[tuple[str, str], StorageSample]:
    return {(x.user, x.group): x for x in asyncio.run(s.measure())}


def like_du(sample: StorageSample, path: Path) -> tuple[int, int]:
    assert (sample.bytes, sample.file_count) == (du(path), du(path, inodes=True))
    return sample.bytes, sample.file_count


def make_home(base: Path) -> Path:
    home = base / "home"
    write(home / "alice" / "thesis.pdf", 300_000)
    write(home / "alice" / "runs" / "1" / "out.nc", 120_000)
    write(home / "bob" / "notes.md", 2_000)
    (home / "lost+found").mkdir()
    write(home / ".snapshot" / "old", 10_000)
    write(home / "bad\nname" / "x", 1_000)
    write(home / " padded" / "x", 1_000)
    (base / "elsewhere" / "carol").mkdir(parents=True)
    (home / "carol").symlink_to(base / "elsewhere" / "carol")
    write(home / "README", 100)
    return home


def test_user_folders(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = make_home(tmp_path)
    found = measure(
        sampler(
            roots=[{"path": str(home), "layout": "{user}"}],
            user_groups={"alice": "climate"},
            default_group="staff",
        )
    )
    assert set(found) == {("alice", "climate"), ("bob", "staff")}
    like_du(found["alice", "climate"], home / "alice")
    like_du(found["bob", "staff"], home / "bob")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'bad\\nname' is no user name" in w for w in warnings), warnings
    assert any(
        "' padded' is no user name (it starts or ends with white space)" in w for w in warnings
    )
    assert any("carol is a symbolic link: not followed" in w for w in warnings)
    assert not any("lost+found" in w or ".snapshot" in w for w in warnings)


def test_group_folders_and_group_user_folders(tmp_path: Path) -> None:
    projects, data = tmp_path / "projects", tmp_path / "data"
    write(projects / "climate" / "model.tar", 50_000)
    write(projects / "astro" / "cat.fits", 70_000)
    write(data / "climate" / "alice" / "a.nc", 30_000)
    write(data / "astro" / "alice" / "b.fits", 40_000)
    write(data / "astro" / "bob" / "c.fits", 5_000)
    found = measure(
        sampler(
            roots=[
                {"path": str(projects), "layout": "{group}"},
                {"path": str(data), "layout": "{group}/{user}"},
            ],
            group_dir_user="{group}-shared",
            user_groups={"alice": "ignored: the folder names the group"},
        )
    )
    assert set(found) == {
        ("climate-shared", "climate"),
        ("astro-shared", "astro"),
        ("alice", "climate"),
        ("alice", "astro"),
        ("bob", "astro"),
    }
    like_du(found["astro-shared", "astro"], projects / "astro")
    like_du(found["alice", "astro"], data / "astro" / "alice")


def test_each_root_is_its_own_source_at_one_time(tmp_path: Path) -> None:
    write(tmp_path / "home" / "alice" / "a", 10_000)
    write(tmp_path / "scratch" / "alice" / "b", 20_000)
    write(tmp_path / "scratch" / "bob" / "c", 30_000)
    s = sampler(
        roots=[
            {"path": str(tmp_path / "home") + "/"},  # layout {user} by default
            {"path": str(tmp_path / "scratch"), "layout": "{user}"},
        ]
    )
    samples = asyncio.run(s.measure())
    assert [(x.user, x.source, x.bytes, x.file_count) for x in samples] == [
        ("alice", str(tmp_path / "home"), du(tmp_path / "home" / "alice"), 2),
        ("alice", str(tmp_path / "scratch"), du(tmp_path / "scratch" / "alice"), 2),
        ("bob", str(tmp_path / "scratch"), du(tmp_path / "scratch" / "bob"), 2),
    ]
    assert len({x.measured_at for x in samples}) == 1  # the round's end, for all


def test_a_folder_that_fails_is_not_posted_and_the_others_are_not_a_partial_sum(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # alice's scratch has too many entries: her home is posted as her home only (its
    # own source), never as her whole storage, and her scratch keeps its last sample.
    write(tmp_path / "home" / "alice" / "a", 10_000)
    for i in range(30):
        write(tmp_path / "scratch" / "alice" / f"{i}", 10)
    roots = [{"path": str(tmp_path / "home")}, {"path": str(tmp_path / "scratch")}]
    s = sampler(roots=roots, max_entries=20)
    samples = asyncio.run(s.measure())
    assert [(x.user, x.source, x.bytes) for x in samples] == [
        ("alice", str(tmp_path / "home"), du(tmp_path / "home" / "alice")),
    ]
    assert s.incomplete
    assert "alice not sampled: more than 20 entries" in caplog.text


def test_a_folder_past_the_bound_is_not_sampled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(30):
        write(tmp_path / "home" / "hoarder" / f"{i}", 10)
    write(tmp_path / "home" / "tidy" / "one", 10)
    s = sampler(roots=[{"path": str(tmp_path / "home")}], max_entries=20)
    found = measure(s)
    assert set(found) == {("tidy", "")}
    assert s.incomplete
    assert "hoarder not sampled: more than 20 entries" in caplog.text


def test_a_missing_root_is_an_error_not_an_empty_tree(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = sampler(roots=[{"path": str(tmp_path / "gone")}])
    assert measure(s) == {}
    assert s.incomplete
    assert f"Root {tmp_path / 'gone'} not sampled" in caplog.text


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"roots": [{"path": "home"}]}, r"roots\[0\]\.path must be an absolute path"),
        ({"roots": [{"path": "/home", "layot": "{user}"}]}, r"roots\[0\] must be"),
        ({"roots": ["/home"]}, r"'roots' trait .* expected a dict, not the str '/home'"),
        ({"roots": [{"path": "/home", "layout": "{uid}"}]}, r"unknown placeholder \{uid\}"),
        (
            {"roots": [{"path": "/home"}, {"path": "/home/", "layout": "{group}/{user}"}]},
            r"roots\[1\]\.path /home is listed twice",
        ),
        ({"folder_names": "slug"}, "folder_names"),
        ({"slug_template": "{userid}"}, r"slug_template: .* must use only"),
        ({"slug_template": "home/{username}"}, "names one folder"),
        ({"group_dir_user": "{user}"}, r"may use \{group\} only"),
        ({"user_groups": {"alice": "bad\ngroup"}}, r"user_groups\['alice'\]"),
        ({"default_group": " x"}, "starts or ends with white space"),
    ],
)
def test_bad_config_is_refused_naming_the_key(traits: dict[str, object], message: str) -> None:
    with pytest.raises(TraitError, match=message):
        sampler(**traits)


# -- the XFS fast path, with a stand-in xfs_quota ---------------------------------------

REPORT = """\
#0          2048        0        0   00 [--------]       5        0        0   00 [--------]
#1001    1048576        0  2097152   00 [--------]    1234        0        0   00 [--------]
"""


def fake_xfs_quota(folder: Path, body: str) -> Path:
    """An executable ``xfs_quota`` that records its arguments, then runs ``body``."""
    path = folder / "bin" / "xfs_quota"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{folder}/argv"\n' + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def xfs_sampler(home: Path, tmp_path: Path, **traits: object) -> FilesystemSampler:
    projects = tmp_path / "projects"
    projects.write_text(f"1001:{home / 'alice'}\n")
    return sampler(
        roots=[{"path": str(home)}],
        use_xfs_quota=True,
        xfs_projects_file=str(projects),
        xfs_projid_file=str(tmp_path / "no-projid"),
        **traits,
    )


def test_the_xfs_report_is_used_where_it_knows_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_home(tmp_path)
    (tmp_path / "report").write_text(REPORT)
    fake_xfs_quota(tmp_path, f'cat "{tmp_path}/report"\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    found = measure(xfs_sampler(home, tmp_path))
    # alice's figures are the report's (1 GiB, 1234 files), not her folder's; bob has
    # no project, so his folder is walked.
    alice = found["alice", ""]
    assert (alice.bytes, alice.file_count) == (1048576 * 1024, 1234)
    like_du(found["bob", ""], home / "bob")
    assert (tmp_path / "argv").read_text().split("\n")[:4] == [
        "-x",
        "-c",
        "report -p -b -i -n -N",
        str(home),
    ]


@pytest.mark.parametrize(
    ("body", "traits", "why"),
    [
        ('echo "xfs_quota: cannot setup path for mount" >&2\nexit 1\n', {}, "exit status 1"),
        ("exec sleep 30\n", {"xfs_quota_timeout": 0.5}, "no answer within 0.5 s"),
        ("echo 'Project quota on /export (/dev/sdb1)'\n", {}, "report line 1"),
        ("", {"xfs_quota_command": "/nonexistent/xfs_quota"}, "not found"),
    ],
    ids=["fails", "hangs", "header", "absent"],
)
def test_without_a_usable_report_the_folders_are_walked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    body: str,
    traits: dict[str, object],
    why: str,
) -> None:
    home = make_home(tmp_path)
    command = fake_xfs_quota(tmp_path, body)
    found = measure(xfs_sampler(home, tmp_path, **{"xfs_quota_command": str(command), **traits}))
    like_du(found["alice", ""], home / "alice")
    like_du(found["bob", ""], home / "bob")
    assert "xfs_quota fast path unusable" in caplog.text
    assert why in caplog.text


# -- hub groups, from a real JupyterHub ----------------------------------------------------

SAMPLER_TOKEN = "storage-sampler-test-token-0123456789abcdef"
HUB_CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.services.append({{"name": "storage-test", "api_token": {SAMPLER_TOKEN!r}}})
c.JupyterHub.load_roles.append({{
    "name": "storage-test",
    "scopes": ["read:users:groups"],
    "services": ["storage-test"],
}})
"""


def hub_with_groups(hub_factory: Callable[..., Hub]) -> Hub:
    hub = hub_factory(HUB_CONFIG, load_dropins=False)
    for user in ("alice", "bob", "carol", "erin"):
        hub.ensure_user(user)
    for group, members in (("climate", ["alice", "bob"]), ("astro", ["bob", "erin"])):
        hub.api("POST", f"/groups/{group}").raise_for_status()
        hub.api("POST", f"/groups/{group}/users", json={"users": members}).raise_for_status()
    return hub


def test_hub_groups_are_read_from_the_hub(
    hub_factory: Callable[..., Hub], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = hub_with_groups(hub_factory)
    for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
        write(tmp_path / "home" / user / "f", 1000)
    s = sampler(
        roots=[{"path": str(tmp_path / "home")}],
        hub_groups=True,
        group_priority=["astro"],
        user_groups={"frank": "climate"},
        default_group="unassigned",
        hub_api_url=f"{hub.url}/hub/api",
    )
    s.api_token = SAMPLER_TOKEN
    found = measure(s)
    assert sorted(found) == [
        ("alice", "climate"),  # one hub group
        ("bob", "astro"),  # two: the priority's
        ("carol", "unassigned"),  # none
        ("dave", "unassigned"),  # no such hub user
        ("erin", "astro"),
        ("frank", "climate"),  # the explicit map, the hub not asked
    ]
    assert not s.incomplete

    # A token the hub refuses: the users who needed the hub wait for the next round.
    s.api_token = "not-a-token"
    assert sorted(measure(s)) == [("frank", "climate")]
    assert s.incomplete
    assert "Could not read the users' hub groups" in caplog.text
    assert "HTTP 403" in caplog.text
    assert "not-a-token" not in caplog.text


# -- KubeSpawner slugs as folder names (Zero to JupyterHub's NFS homes) -----------------

SLUG_TOKEN = "storage-slug-test-token-0123456789abcdef"
SLUG_HUB_CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.api_page_max_limit = 2  # so that the users come in several pages
c.JupyterHub.services.append({{"name": "storage-slugs", "api_token": {SLUG_TOKEN!r}}})
c.JupyterHub.load_roles.append({{
    "name": "storage-slugs",
    "scopes": ["list:users", "read:users:name"],
    "services": ["storage-slugs"],
}})
"""
HUB_USERS = ["alice", "Alice.Smith@uni.ac.uk", "bob-2", "carol", "dave"]


def test_kubespawner_slug_folders_are_sampled_as_the_hubs_users(
    hub_factory: Callable[..., Hub], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = hub_factory(SLUG_HUB_CONFIG, load_dropins=False)
    for user in HUB_USERS:
        hub.ensure_user(user)
    names = sorted(u["name"] for u in hub.api("GET", "/users?limit=100").json())
    assert "Alice.Smith@uni.ac.uk" in names  # the hub keeps the name as given
    home = tmp_path / "home"
    # The folders as KubeSpawner 7 names the chart's home sub-path ({username}, "safe").
    for folder, size in (
        ("alice", 1_000),
        ("alice-smith-uni-ac-uk---726d1a19", 2_000),
        ("bob-2", 3_000),
        ("left-the-hub", 4_000),  # no hub user has this slug
        ("x-0ld---12345678", 5_000),
    ):
        write(home / folder / "f", size)
    s = sampler(
        roots=[{"path": str(home)}],
        folder_names="kubespawner-slug",
        hub_api_url=f"{hub.url}/hub/api",
    )
    s.api_token = SLUG_TOKEN
    found = measure(s)
    assert sorted(found) == [("Alice.Smith@uni.ac.uk", ""), ("alice", ""), ("bob-2", "")]
    like_du(found["Alice.Smith@uni.ac.uk", ""], home / "alice-smith-uni-ac-uk---726d1a19")
    assert not s.incomplete
    (warning,) = [r.getMessage() for r in caplog.records if "KubeSpawner slug" in r.getMessage()]
    assert warning.startswith("2 folders are no hub user's KubeSpawner slug")
    assert str(home / "left-the-hub") in warning

    # The hub cannot be asked: the slug folders wait for the next round.
    s.api_token = "not-a-token"
    assert measure(s) == {}
    assert s.incomplete
    assert "Could not list the hub's users" in caplog.text
    assert "not-a-token" not in caplog.text


@pytest.mark.parametrize(
    ("name", "template", "scheme", "folder"),
    [
        ("alice", "{username}", "safe", "alice"),
        ("Alice.Smith@uni.ac.uk", "{username}", "safe", "alice-smith-uni-ac-uk---726d1a19"),
        ("Alice.Smith@uni.ac.uk", "{username}", "escape", "-41lice-2e-53mith-40uni-2eac-2euk"),
        (
            "Alice.Smith@uni.ac.uk",
            "{escaped_username}",
            "safe",
            "-41lice-2e-53mith-40uni-2eac-2euk",
        ),
        ("a--b", "{username}", "safe", "a-b---90827a2e"),
        ("x" * 60, "{username}", "safe", "x" * 37 + "---42f2d973"),
        ("alice", "home-{username}", "safe", "home-alice"),
    ],
)
def test_slugs_are_kubespawners(name: str, template: str, scheme: str, folder: str) -> None:
    from kubespawner.slugs import escape_slug, safe_slug

    assert kubespawner_slug(name, template, scheme) == folder
    # What KubeSpawner 7 fills {username} with: safe_slug at most 48 long, or escape_slug.
    plain = safe_slug(name, max_length=48) if scheme == "safe" else escape_slug(name)
    if template == "{username}":
        assert folder == plain
