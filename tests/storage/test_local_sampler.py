"""LocalWorkspaceSampler: the workspaces QuotaLocalSpawner makes, found from its launch
config and measured as ``du`` measures them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import yaml
from traitlets import TraitError

from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.launch.volumes import expand
from eohub.spawner.settings import load_launch_config
from eohub.storage.local import LocalWorkspaceSampler, workspace_templates
from tests.storage.test_walk import du, write


def measure(s: LocalWorkspaceSampler) -> dict[tuple[str, str], StorageSample]:
    return {(x.user, x.group): x for x in asyncio.run(s.measure())}


def volumes(local_path: str) -> dict[str, object]:
    return {
        "home": {
            "kind": "workspace",
            "display_name": "Your workspace",
            "mount_path": "/home/jovyan",
            "local_path": local_path,
        },
        "common": {
            "kind": "host_path",
            "display_name": "Common data",
            "mount_path": "/data/common",
            "path": "/srv/common",
            "read_only": True,
        },
    }


def spawner_workspace(template: str, user: str, group: str = "") -> Path:
    """The folder QuotaLocalSpawner makes for ``user`` (its own expand)."""
    return Path(expand(template, username=user, group=group))


def fill(template: str, *owners: tuple[str, str]) -> dict[tuple[str, str], Path]:
    made = {}
    for user, group in owners:
        folder = spawner_workspace(template, user, group)
        write(folder / "notebook.ipynb", 5_000 + 1000 * len(user))
        write(folder / "data" / "cube.nc", 40_000)
        made[user, group] = folder
    return made


def test_the_launch_config_file_names_the_workspaces(tmp_path: Path) -> None:
    template = str(tmp_path / "workspaces" / "{username}")
    config = tmp_path / "launch.yaml"
    config.write_text(yaml.safe_dump({"volumes": volumes(template), "sizes": {}}))
    # The spawner's own loader takes the same file (a bad one would fail the hub, too).
    assert load_launch_config("local", yaml.safe_load(config.read_text())).volumes
    made = fill(template, ("alice", ""), ("bob", ""))
    s = LocalWorkspaceSampler(
        launch_config_file=str(config), user_groups={"alice": "climate"}, default_group=""
    )
    found = measure(s)
    assert set(found) == {("alice", "climate"), ("bob", "")}
    for (user, _), folder in made.items():
        sample = next(x for x in found.values() if x.user == user)
        assert (sample.bytes, sample.file_count) == (du(folder), du(folder, inodes=True))
    assert not s.incomplete


def test_group_workspaces_name_the_group(tmp_path: Path) -> None:
    template = str(tmp_path / "srv" / "{group}" / "{username}")
    made = fill(template, ("alice", "climate"), ("alice", "astro"), ("bob", "astro"))
    found = measure(LocalWorkspaceSampler(workspace_paths=[template], default_group="other"))
    assert set(found) == set(made)
    sample = found["alice", "astro"]
    assert sample.bytes == du(made["alice", "astro"])


def test_workspace_root(tmp_path: Path) -> None:
    made = fill(str(tmp_path / "{username}"), ("carol", ""))
    found = measure(LocalWorkspaceSampler(workspace_root=str(tmp_path) + "/"))
    assert found["carol", ""].bytes == du(made["carol", ""])
    assert found["carol", ""].source == str(tmp_path)  # the workspace root


def test_the_source_is_the_templates_root(tmp_path: Path) -> None:
    template = str(tmp_path / "srv" / "{group}" / "{username}")
    fill(template, ("alice", "climate"), ("bob", "astro"))
    samples = asyncio.run(LocalWorkspaceSampler(workspace_paths=[template]).measure())
    assert {x.source for x in samples} == {str(tmp_path / "srv")}
    assert len({x.measured_at for x in samples}) == 1


def test_templates_come_from_the_volumes_as_the_spawner_reads_them() -> None:
    assert workspace_templates(volumes("/srv/eohub/workspaces/{username}")) == [
        "/srv/eohub/workspaces/{username}"
    ]
    with pytest.raises(ValueError, match=r"must use \{username\}"):
        workspace_templates(volumes("/srv/eohub/workspaces/shared"))


def test_no_workspaces_yet_is_no_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    s = LocalWorkspaceSampler(workspace_paths=[str(tmp_path / "not-yet" / "{username}")])
    assert measure(s) == {}
    assert not s.incomplete
    assert "No workspaces yet under" in caplog.text


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({}, "set LocalWorkspaceSampler.workspace_root, workspace_paths or launch_config_file"),
        ({"launch_config_file": "/nonexistent/launch.yaml"}, "cannot read /nonexistent"),
    ],
)
def test_without_workspaces_the_round_fails_saying_why(
    traits: dict[str, object], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = LocalWorkspaceSampler(**traits)
    assert measure(s) == {}
    assert s.incomplete
    assert message in caplog.text


def test_a_bad_launch_config_file_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "launch.yaml"
    config.write_text(yaml.safe_dump({"volumes": volumes("relative/{username}")}))
    s = LocalWorkspaceSampler(launch_config_file=str(config))
    assert measure(s) == {}
    assert s.incomplete
    assert "volumes.home.local_path" in caplog.text


def test_bad_workspace_paths_are_refused() -> None:
    with pytest.raises(TraitError, match="must use"):
        LocalWorkspaceSampler(workspace_paths=["/srv/workspaces"])
