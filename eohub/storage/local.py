"""Sampling the workspaces of a one-machine hub (``QuotaLocalSpawner``).

Each user's workspace is the ``local_path`` of the launch config's ``workspace`` volume
(``/srv/eohub/workspaces/{username}``, or ``/srv/{group}/{username}`` for one per group
charged). :class:`LocalWorkspaceSampler` finds those templates, in this order:

1. ``workspace_root`` (one folder per user, named by the user name);
2. ``workspace_paths`` (the templates themselves; drop-in 35 passes the spawner's when
   its ``launch_volumes`` are set before it);
3. the ``volumes`` of ``launch_config_file`` (the YAML file the spawner reads),

and walks each user's workspace as the filesystem sampler does. A ``{group}`` folder
names the group charged; otherwise the shared group mapping decides. Each sample's
source is the workspaces' root (``/srv/eohub/workspaces``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from traitlets import List, TraitError, Unicode, validate

from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.launch.fields import LaunchConfigError
from eohub.domain.launch.volumes import parse_volumes
from eohub.domain.storage.owners import LayoutError, Owner, split_template
from eohub.logs import get_logger
from eohub.storage.filesystem import DirectorySampler, find_targets

log = get_logger(__name__)


def workspace_templates(volumes: Mapping[str, Any]) -> list[str]:
    """The ``local_path`` templates of the ``workspace`` volumes of a local launch
    config's ``volumes``, validated as the spawner validates them."""
    parsed = parse_volumes(volumes, "local")
    found = [v.local_path for v in parsed.values() if v.kind == "workspace" and v.local_path]
    return list(dict.fromkeys(found))


def templates_in_file(path: str) -> list[str]:
    """The workspace templates of a launch config YAML file (its ``volumes`` key)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise LaunchConfigError("launch_config_file", f"cannot read {path}: {e}") from None
    if not isinstance(data, dict):
        raise LaunchConfigError("launch_config_file", f"{path} must hold a mapping")
    return workspace_templates(data.get("volumes") or {})


class LocalWorkspaceSampler(DirectorySampler):
    """The workspaces of ``QuotaLocalSpawner``, one folder per user (or per group)."""

    workspace_root = Unicode(
        "",
        help="""The folder holding one workspace per user, named by the user name (the
        same as ``workspace_paths = ["<root>/{username}"]``). Wins over the others.""",
    ).tag(config=True)

    workspace_paths = List(
        Unicode(),
        help="""The workspaces' ``local_path`` templates, as in the spawner's
        ``launch_volumes``: ``/srv/eohub/workspaces/{username}``, or
        ``/srv/{group}/{username}`` (the folder then names the group charged). Drop-in
        35 fills it from ``QuotaLocalSpawner.launch_volumes`` when they are set before
        it.""",
    ).tag(config=True)

    launch_config_file = Unicode(
        "",
        help="""The launch config YAML file the spawner reads
        (``QuotaLocalSpawner.launch_config_file``): its ``workspace`` volumes'
        ``local_path`` templates are sampled, read again at each round. Used when
        ``workspace_root`` and ``workspace_paths`` are empty.""",
    ).tag(config=True)

    @validate("workspace_paths")
    def _check_paths(self, proposal: dict[str, Any]) -> list[str]:
        paths: list[str] = proposal["value"]
        for path in paths:
            try:
                split_template(path)
            except LayoutError as e:
                raise TraitError(f"LocalWorkspaceSampler.workspace_paths: {e}") from None
        return paths

    def templates(self) -> list[str]:
        """The workspace templates to sample; LaunchConfigError if the file is bad."""
        if self.workspace_root:
            return [self.workspace_root.rstrip("/") + "/{username}"]
        if self.workspace_paths:
            return list(self.workspace_paths)
        if self.launch_config_file:
            return templates_in_file(self.launch_config_file)
        return []

    async def measure(self) -> list[StorageSample]:
        try:
            templates = await asyncio.to_thread(self.templates)
        except LaunchConfigError as e:
            log.error("No workspaces to sample: {error}", error=e)
            self.incomplete = True
            return []
        if not templates:
            log.error(
                "No workspaces to sample: set LocalWorkspaceSampler.workspace_root, "
                "workspace_paths or launch_config_file (the spawner's launch config), or "
                "set QuotaLocalSpawner.launch_volumes before drop-in 35 loads"
            )
            self.incomplete = True
            return []
        folders = await self.folder_users() if self.folder_names.lower() != "user" else None
        owners: list[Owner] = []
        unknown: list[str] = []
        for template in templates:
            owners.extend(await self.measure_template(template, folders, unknown))
        self.warn_unknown(unknown)
        return await self.resolve_groups(owners)

    async def measure_template(
        self,
        template: str,
        folders: dict[str, str] | None = None,
        unknown: list[str] | None = None,
    ) -> list[Owner]:
        """The owners of one template's workspaces; their source is its root (the
        folders before the first placeholder)."""
        try:
            root, layout = split_template(template)
        except LayoutError as e:
            log.error("Workspaces {template} not sampled: {error}", template=template, error=e)
            self.incomplete = True
            return []
        try:
            targets = await asyncio.to_thread(find_targets, root, layout, skip=self.skip_names)
        except FileNotFoundError:
            # No user has started a server yet: the spawner makes the folders then.
            log.info("No workspaces yet under {root}", root=root)
            return []
        except OSError as e:
            log.error("Workspaces under {root} not sampled: {error}", root=root, error=e)
            self.incomplete = True
            return []
        targets = self.name_targets(targets, folders, [] if unknown is None else unknown)
        return await self.measure_targets(targets)


__all__ = ["LocalWorkspaceSampler", "templates_in_file", "workspace_templates"]
