"""place_links: a launch's volume links appear, eohub's old ones go, the user's stay.

Also: a link another running server of the user uses stays, and a server with no record
yet adopts the links eohub made before it kept records (and only those).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from eohub.domain.launch.volumes import Volume, parse_volumes
from eohub.spawner.local import LINKS_KEY, QuotaLocalSpawner
from eohub.spawner.local_links import adopt_links, eohub_made_links, place_links
from eohub.spawner.repo_launches import RepoLaunches
from tests.spawner.context_support import ENVIRONMENTS, SIZES
from tests.support.kube_spawners import FakeAccounting


def links_in(workdir: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in workdir.iterdir() if p.is_symlink()}


def test_links_of_this_launch_are_made_and_remembered(tmp_path: Path) -> None:
    made = place_links(tmp_path, {"common": "/srv/common", "eo": "/srv/eo"}, {})
    assert links_in(tmp_path) == {"common": "/srv/common", "eo": "/srv/eo"}
    assert made == {str(tmp_path / "common"): "/srv/common", str(tmp_path / "eo"): "/srv/eo"}
    # The same launch again changes nothing.
    assert place_links(tmp_path, {"common": "/srv/common", "eo": "/srv/eo"}, made) == made


def test_a_link_this_launch_does_not_have_is_removed(tmp_path: Path) -> None:
    made = place_links(tmp_path, {"common": "/srv/common", "eo": "/srv/eo"}, {})
    again = place_links(tmp_path, {"eo": "/srv/eo"}, made)
    assert links_in(tmp_path) == {"eo": "/srv/eo"}
    assert again == {str(tmp_path / "eo"): "/srv/eo"}
    assert place_links(tmp_path, {}, again) == {}
    assert links_in(tmp_path) == {}


def test_eohubs_link_to_a_moved_volume_is_replaced(tmp_path: Path) -> None:
    made = place_links(tmp_path, {"group": "/srv/groups/climate"}, {})
    again = place_links(tmp_path, {"group": "/srv/groups/astro"}, made)
    assert links_in(tmp_path) == {"group": "/srv/groups/astro"}
    assert again == {str(tmp_path / "group"): "/srv/groups/astro"}


def test_the_users_own_files_and_links_are_never_touched(tmp_path: Path) -> None:
    made = place_links(tmp_path, {"common": "/srv/common", "eo": "/srv/eo"}, {})
    # The user replaced eohub's links: one with a folder, one with a link of their own.
    (tmp_path / "common").unlink()
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "notes.txt").write_text("mine\n")
    (tmp_path / "eo").unlink()
    (tmp_path / "eo").symlink_to("/home/mine")
    (tmp_path / "data").symlink_to("/srv/data")  # a link eohub never made

    # Neither a launch without the volumes, nor one with them, touches any of it.
    assert place_links(tmp_path, {}, made) == {}
    assert place_links(tmp_path, {"common": "/srv/common", "eo": "/srv/eo"}, {}) == {}
    assert (tmp_path / "common" / "notes.txt").read_text() == "mine\n"
    assert links_in(tmp_path) == {"eo": "/home/mine", "data": "/srv/data"}
    # A link the user made that is just what the volume needs is taken as it is.
    assert place_links(tmp_path, {"data": "/srv/data"}, {}) == {
        str(tmp_path / "data"): "/srv/data"
    }


# -- the user's other running servers share the workspace ----------------------------


def test_a_link_another_running_server_uses_is_not_removed(tmp_path: Path) -> None:
    # This server made `scratch` once; another running server now uses that very link.
    made = place_links(tmp_path, {"scratch": "/srv/scratch"}, {})
    in_use = {str(tmp_path / "scratch"): "/srv/scratch"}
    assert place_links(tmp_path, {}, made, in_use) == {}
    assert links_in(tmp_path) == {"scratch": "/srv/scratch"}
    # This server no longer records it; the one that uses it does, and removes it when
    # it is launched without it.
    assert place_links(tmp_path, {}, in_use) == {}
    assert links_in(tmp_path) == {}


def test_a_link_another_running_server_uses_is_not_pointed_elsewhere(tmp_path: Path) -> None:
    # A `{group}` volume: this server once linked climate's folder; another server,
    # charged to climate, runs with it; this launch is charged to staff.
    made = place_links(tmp_path, {"group": "/shares/climate"}, {})
    in_use = {str(tmp_path / "group"): "/shares/climate"}
    assert place_links(tmp_path, {"group": "/shares/staff"}, made, in_use) == {}
    assert links_in(tmp_path) == {"group": "/shares/climate"}


def test_another_servers_record_of_another_target_protects_nothing(tmp_path: Path) -> None:
    made = place_links(tmp_path, {"group": "/shares/climate"}, {})
    stale = {str(tmp_path / "group"): "/shares/astro"}  # not what is there now
    assert place_links(tmp_path, {"group": "/shares/staff"}, made, stale) == {
        str(tmp_path / "group"): "/shares/staff"
    }
    assert place_links(tmp_path, {}, {str(tmp_path / "group"): "/shares/staff"}, stale) == {}
    assert links_in(tmp_path) == {}


# -- links made before eohub kept a record of them --------------------------------------


def volumes() -> list[Volume]:
    raw = {
        "home": {"kind": "workspace", "mount_path": "/home/jovyan", "local_path": "/w/{username}"},
        "common": {"kind": "host_path", "mount_path": "/data/common", "path": "/srv/common"},
        "group": {"kind": "host_path", "mount_path": "/data/group", "path": "/shares/{group}"},
        "mine": {"kind": "host_path", "mount_path": "/data/mine", "path": "/users/{username}"},
    }
    return list(parse_volumes(raw, "local").values())


def test_the_links_eohub_may_have_made_are_named_and_aimed_as_its_volumes() -> None:
    assert eohub_made_links(volumes(), "ada", ["climate", "staff", "a/b"]) == {
        "common": frozenset({"/srv/common"}),
        "group": frozenset({"/shares/climate", "/shares/staff"}),
        "mine": frozenset({"/users/ada"}),
    }


def test_only_links_eohub_would_have_made_are_adopted_and_then_removed(
    tmp_path: Path,
) -> None:
    for name, target in (
        ("common", "/srv/common"),  # eohub's
        ("group", "/shares/climate"),  # eohub's, for one of the user's groups
        ("mine", "/users/bob"),  # the right name, another user's folder: not eohub's
        ("shared", "/srv/common"),  # a volume's folder under another name: the user's
        ("data", "/srv/data"),  # a link of the user's own
    ):
        (tmp_path / name).symlink_to(target)
    (tmp_path / "notes").mkdir()
    known = eohub_made_links(volumes(), "ada", ["climate", "staff"])
    adopted = adopt_links(tmp_path, known)
    assert adopted == {
        str(tmp_path / "common"): "/srv/common",
        str(tmp_path / "group"): "/shares/climate",
    }
    # A launch without them removes them; everything else stays as it was.
    # (ada's own `mine` cannot be linked: bob's link of the user's is in the way.)
    assert place_links(tmp_path, {"mine": "/users/ada"}, adopted) == {}
    assert links_in(tmp_path) == {
        "mine": "/users/bob",
        "shared": "/srv/common",
        "data": "/srv/data",
    }
    assert (tmp_path / "notes").is_dir()


def local_spawner(homes: Path, state: dict[str, object]) -> QuotaLocalSpawner:
    """A real QuotaLocalSpawner of ada (in climate) with an optional ``host_path`` volume,
    its state loaded as the hub loads it; nothing is started."""
    config = Config()
    config.QuotaLocalSpawner.switch_user = False
    config.QuotaLocalSpawner.launch_environments = ENVIRONMENTS
    config.QuotaLocalSpawner.launch_sizes = SIZES
    config.QuotaLocalSpawner.launch_volumes = {
        "home": {
            "kind": "workspace",
            "mount_path": "/home/jovyan",
            "local_path": str(homes / "{username}"),
        },
        "common": {
            "kind": "host_path",
            "mount_path": "/data/common",
            "path": "/srv/common",
            "optional": True,
        },
    }
    user = SimpleNamespace(name="ada", groups=[SimpleNamespace(name="climate")])
    orm = SimpleNamespace(name="", user_options=None, server=None, started=None)
    spawner = QuotaLocalSpawner(
        config=config,
        user=user,
        orm_spawner=orm,
        accounting=FakeAccounting(),
        repo_launches=RepoLaunches(config=config),
    )
    spawner.load_state(state)
    return spawner


async def launch_without_the_volume(spawner: QuotaLocalSpawner) -> None:
    await spawner.authorize_launch({"environment": "lab", "size": "small"})
    spawner._prepare_workdir()  # what start does before the server process starts


@pytest.mark.parametrize(
    ("state", "removed"),
    [
        # Last launched before eohub kept a record: its link is adopted, then removed.
        ({}, True),
        # A record that does not name the link: it is the user's own, and stays.
        ({LINKS_KEY: {}}, False),
    ],
)
async def test_a_server_without_a_record_adopts_eohubs_earlier_links(
    tmp_path: Path, state: dict[str, object], removed: bool
) -> None:
    home = tmp_path / "ada"
    home.mkdir()
    (home / "common").symlink_to("/srv/common")
    (home / "shared").symlink_to("/srv/common")  # another name: never eohub's
    spawner = local_spawner(tmp_path, state)
    await launch_without_the_volume(spawner)
    assert links_in(home) == (
        {"shared": "/srv/common"}
        if removed
        else {"common": "/srv/common", "shared": "/srv/common"}
    )
    # From now on the server has a record, even an empty one, and adopts nothing.
    assert spawner.get_state()[LINKS_KEY] == {}
    (home / "common").unlink(missing_ok=True)
    (home / "common").symlink_to("/srv/common")
    again = local_spawner(tmp_path, spawner.get_state())
    await launch_without_the_volume(again)
    assert os.readlink(home / "common") == "/srv/common"
