"""Sampling directory trees: users' and groups' folders on a shared filesystem.

:class:`FilesystemSampler` runs where the data is (the NFS home server, or any machine
that mounts the trees) and measures each user's or group's folder under its ``roots``
(layouts ``{user}``, ``{group}``, ``{group}/{user}``), with the XFS project quota report
when asked (``use_xfs_quota``) and a bounded, low-priority walk otherwise
(:mod:`eohub.storage.walk`). :class:`DirectorySampler` holds what it shares with the
one-machine sampler (:mod:`eohub.storage.local`): the walk's bounds and finding the
folders a layout names.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from typing import Any

from traitlets import (
    Bool,
    CaselessStrEnum,
    Dict,
    Float,
    Integer,
    List,
    TraitError,
    Unicode,
    validate,
)

from eohub.adapters.hub_api import HubAPIError
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.storage.owners import Layout, LayoutError, Owner, name_problem
from eohub.domain.storage.xfs_report import ProjectUsage
from eohub.logs import get_logger
from eohub.storage.sampler import HubUsers, Sampler
from eohub.storage.slugs import SLUG_SCHEMES, check_slug_template, slug_names
from eohub.storage.walk import Limits, TooManyEntries, WalkStopped, walk_in_thread
from eohub.storage.xfs_quota import XfsQuota, project_usage

log = get_logger(__name__)


@dataclass(frozen=True)
class Target:
    """One folder to measure, and whose it is (``group`` None: the folder names none).

    ``source`` is the root it was found under; ``user_folder`` says whether a folder
    named the user (False: a group's folder, sampled as ``group_dir_user``).
    """

    path: str
    user: str
    group: str | None
    source: str = ""
    user_folder: bool = True


def _children(path: str, field: str, skip: Collection[str]) -> Iterator[tuple[str, str]]:
    """(name, path) of the folders in ``path`` that may name a ``field``."""
    with os.scandir(path) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name in skip or entry.name.startswith("."):
                continue
            if entry.is_symlink():
                log.warning(
                    "{path} is a symbolic link: not followed, so not sampled as a {field}",
                    path=entry.path,
                    field=field,
                )
                continue
            if entry.is_dir(follow_symlinks=False):
                yield entry.name, entry.path


def find_targets(
    root: str, layout: Layout, *, group_dir_user: str = "{group}", skip: Collection[str] = ()
) -> list[Target]:
    """The folders ``layout`` names under ``root`` (their source: ``root``); names that
    cannot be a user or group are skipped with a warning. Raises OSError when ``root``
    cannot be listed."""
    level: list[tuple[str, dict[str, str]]] = [(root, {})]
    for segment in layout.segments:
        following: list[tuple[str, dict[str, str]]] = []
        for path, fields in level:
            if segment.field is None:
                child = os.path.join(path, segment.text)
                with_mode = _lstat_mode(child)
                if with_mode is not None and stat.S_ISDIR(with_mode):
                    following.append((child, fields))
                continue
            for name, child in _children(path, segment.field, skip):
                value = segment.match(name)
                if value is None:
                    continue
                problem = name_problem(value, segment.field)
                if problem:
                    log.warning(
                        "{path} not sampled: {value!r} is no {field} name (it {problem})",
                        path=child,
                        value=value,
                        field=segment.field,
                        problem=problem,
                    )
                    continue
                following.append((child, {**fields, segment.field: value}))
        level = following
    targets = []
    for path, fields in level:
        group = fields.get("group")
        user = fields.get("user") or group_dir_user.format(group=group)
        targets.append(Target(path, user, group, root, "user" in fields))
    return targets


def _lstat_mode(path: str) -> int | None:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return None


class DirectorySampler(Sampler):
    """What the directory samplers share: the bounded walk, and what folders are named."""

    folder_names = CaselessStrEnum(
        ["user", "kubespawner-slug"],
        default_value="user",
        help="""What the ``{user}`` folders are named by. ``user``: the user name itself.
        ``kubespawner-slug``: KubeSpawner's slug of it, as in the homes of a Zero to
        JupyterHub hub sharing one NFS volume (``singleuser.storage.static.subPath``,
        e.g. ``alice-smith-uni-ac-uk---726d1a19`` for ``Alice.Smith@uni.ac.uk``): each
        round the sampler lists the hub's users through its REST API
        (``$JUPYTERHUB_API_URL``; its token then needs the scopes ``list:users`` and
        ``read:users:name``), computes their slugs as the installed KubeSpawner does
        (``slug_template``, ``slug_scheme``), and samples each folder as its user.
        Folders that are no hub user's slug are skipped with one warning.""",
    ).tag(config=True)

    slug_template = Unicode(
        "{username}",
        help="""With ``folder_names = "kubespawner-slug"``: the folder name KubeSpawner
        makes, as in the chart's ``singleuser.storage.static.subPath`` (its last folder):
        ``{username}`` (the chart's default), ``{escaped_username}`` or
        ``{safe_username}``.""",
    ).tag(config=True)

    @validate("slug_template")
    def _check_slug_template(self, proposal: dict[str, Any]) -> str:
        try:
            return check_slug_template(proposal["value"])
        except ValueError as e:
            raise TraitError(f"slug_template: {e}") from None

    slug_scheme = CaselessStrEnum(
        SLUG_SCHEMES,
        default_value="safe",
        help="""With ``folder_names = "kubespawner-slug"``: the hub's
        ``KubeSpawner.slug_scheme`` (``safe``, KubeSpawner 7's default; ``escape``, the
        scheme of KubeSpawner 6 and of hubs that kept it).""",
    ).tag(config=True)

    max_entries = Integer(
        10_000_000,
        min=1,
        help="""The most entries (files, folders, links) one folder's walk may count.
        A folder with more is not sampled this round and an error is logged, so that a
        partial sum is never posted as a real shrink. Raise it for users with more
        files: a million entries take a few seconds on a warm cache, and longer when
        they must be read from disk (``benchmarks/storage_walk.py``).""",
    ).tag(config=True)

    pause_every = Integer(
        10_000,
        min=1,
        help="""The walk pauses for ``pause_seconds`` after this many entries, so that
        the disk and the file server stay responsive to their other users.""",
    ).tag(config=True)

    pause_seconds = Float(
        0.01,
        min=0.0,
        help="Seconds of each pause of the walk (0: only yield the processor).",
    ).tag(config=True)

    skip_names = List(
        Unicode(),
        ["lost+found"],
        help="""Folder names under a root that are never a user or group (besides
        hidden names, which start with a dot and are always skipped).""",
    ).tag(config=True)

    async def folder_users(self) -> dict[str, str] | None:
        """Folder name -> user name, read from the hub (``kubespawner-slug``); None (and
        the round marked incomplete) when the hub cannot say."""
        try:
            hub = HubUsers(self.hub_api_url, self.api_token, request_timeout=self.hub_api_timeout)
            names = await hub.user_names()
        except HubAPIError as e:
            log.error(
                "Could not list the hub's users ({error}); folders named by KubeSpawner "
                "slugs are sampled at the next round",
                error=e,
            )
            self.incomplete = True
            return None
        return slug_names(names, self.slug_template, self.slug_scheme.lower())

    def name_targets(
        self, targets: list[Target], folders: dict[str, str] | None, unknown: list[str]
    ) -> list[Target]:
        """``targets`` with their users named: as the folders are (``user``), else by
        ``folders``; user folders it does not name are added to ``unknown``."""
        if self.folder_names.lower() == "user":
            return targets
        named = []
        for target in targets:
            user = (folders or {}).get(target.user) if target.user_folder else target.user
            if user is None:
                if folders is not None:
                    unknown.append(target.path)
                continue
            named.append(replace(target, user=user))
        return named

    def warn_unknown(self, unknown: list[str]) -> None:
        if unknown:
            log.warning(
                "{count} folders are no hub user's KubeSpawner slug and were not sampled "
                "(the first: {first}); check slug_template and slug_scheme against the "
                "hub's, or remove the folders of deleted users",
                count=len(unknown),
                first=", ".join(unknown[:5]),
            )

    def walk_limits(self) -> Limits:
        seconds = self.pause_seconds
        return Limits(
            max_entries=self.max_entries,
            pause_every=self.pause_every,
            pause=lambda: time.sleep(seconds),
            stop=self.stopping,
        )

    async def measure_target(self, target: Target) -> Owner | None:
        """Walk one folder; None (logged) when it cannot be measured in whole."""
        try:
            usage = await walk_in_thread(target.path, self.walk_limits())
        except TooManyEntries as e:
            log.error(
                "{path} not sampled: more than {limit} entries (raise max_entries to measure it)",
                path=target.path,
                limit=e.limit,
            )
            self.incomplete = True
            return None
        except OSError as e:
            log.error("{path} not sampled: {error}", path=target.path, error=e)
            self.incomplete = True
            return None
        if usage.unreadable or usage.vanished:
            log.warning(
                "{path}: {unreadable} entries could not be read and {vanished} vanished "
                "while it was walked (the first: {first}); the rest is counted",
                path=target.path,
                unreadable=usage.unreadable,
                vanished=usage.vanished,
                first=usage.first_problem,
            )
        return Owner(target.user, target.group, usage.bytes, usage.entries, target.source)

    async def measure_targets(
        self, targets: list[Target], known: dict[str, ProjectUsage] | None = None
    ) -> list[Owner]:
        """Each target's owner: from ``known`` (by real path) where it is, else walked.

        When a folder cannot be measured, its (user, group, source) is left out whole,
        even where another folder of the same source was measured: a part posted as the
        whole would look like a shrink.
        """
        owners = []
        failed = set()
        for target in targets:
            if self.stopping.is_set():
                raise WalkStopped(target.path)
            found = None
            if known:
                found = known.get(await asyncio.to_thread(os.path.realpath, target.path))
            if found is not None:
                owners.append(
                    Owner(target.user, target.group, found.bytes, found.files or 0, target.source)
                )
                continue
            owner = await self.measure_target(target)
            if owner is None:
                failed.add((target.user, target.group, target.source))
            else:
                owners.append(owner)
        return [o for o in owners if (o.user, o.group, o.source) not in failed]


class FilesystemSampler(DirectorySampler):
    """Users' and groups' folders on a shared filesystem (an NFS home server)."""

    roots = List(
        Dict(),
        help="""The trees to sample: a list of ``{"path": "/home", "layout": "{user}"}``.
        ``layout`` says which folders below ``path`` are measured and whose they are:
        ``{user}`` (``/home/alice``), ``{group}`` (``/projects/climate``, sampled as the
        user ``group_dir_user``), ``{group}/{user}`` (``/data/climate/alice``), or any
        relative path with them (``{user}/work``). Folder names that cannot be a user or
        group name are skipped with a warning.""",
    ).tag(config=True)

    group_dir_user = Unicode(
        "{group}",
        help="""The user a ``{group}``-only folder is sampled as (``{group}`` is the
        folder's name), so that a group's shared folder counts in its storage.""",
    ).tag(config=True)

    use_xfs_quota = Bool(
        False,
        help="""Read each root's XFS project quota report (``xfs_quota -x -c 'report -p -b
        -i -n -N' <path>``, as root) instead of walking the folders that are projects
        in ``xfs_projects_file``; the others, and every folder when the report cannot
        be had, are walked.""",
    ).tag(config=True)

    xfs_quota_command = Unicode(
        "xfs_quota", help="The ``xfs_quota`` program (a name on ``PATH``, or a path)."
    ).tag(config=True)

    xfs_projects_file = Unicode(
        "/etc/projects", help="XFS project ids to directories (``1001:/export/home/alice``)."
    ).tag(config=True)

    xfs_projid_file = Unicode(
        "/etc/projid", help="XFS project names to ids (``alice:1001``); may be missing."
    ).tag(config=True)

    xfs_quota_timeout = Float(
        60.0, help="Seconds ``xfs_quota`` may take before the sampler walks instead."
    ).tag(config=True)

    @validate("roots")
    def _check_roots(self, proposal: dict[str, Any]) -> list[dict[str, str]]:
        roots: list[Any] = proposal["value"]
        for i, root in enumerate(roots):
            where = f"FilesystemSampler.roots[{i}]"
            if not isinstance(root, dict) or set(root) - {"path", "layout"} or "path" not in root:
                raise TraitError(f'{where} must be {{"path": "/home", "layout": "{{user}}"}}')
            if not isinstance(root["path"], str) or not os.path.isabs(root["path"]):
                raise TraitError(f"{where}.path must be an absolute path")
            try:
                Layout.parse(root.get("layout", "{user}"))
            except (LayoutError, TypeError) as e:
                raise TraitError(f"{where}.layout: {e}") from None
        # The path is the samples' source: "/home/" and "/home" must be one source, and
        # two layouts of one tree would be added up as one, maybe counting folders twice.
        normal = [{**r, "path": os.path.normpath(r["path"])} for r in roots]
        paths = [r["path"] for r in normal]
        for i, path in enumerate(paths):
            if path in paths[:i]:
                raise TraitError(f"FilesystemSampler.roots[{i}].path {path} is listed twice")
        return normal

    @validate("group_dir_user")
    def _check_group_dir_user(self, proposal: dict[str, Any]) -> str:
        value: str = proposal["value"]
        try:
            value.format(group="g")
        except (KeyError, IndexError, ValueError):
            raise TraitError(f"group_dir_user {value!r} may use {{group}} only") from None
        return value

    async def measure(self) -> list[StorageSample]:
        if not self.roots:
            log.error("FilesystemSampler.roots is empty: nothing to sample")
            self.incomplete = True
            return []
        folders = await self.folder_users() if self.folder_names.lower() != "user" else None
        owners: list[Owner] = []
        unknown: list[str] = []
        for root in self.roots:
            layout = root.get("layout", "{user}")
            owners.extend(await self.measure_root(root["path"], layout, folders, unknown))
        self.warn_unknown(unknown)
        return await self.resolve_groups(owners)

    async def measure_root(
        self,
        path: str,
        layout_text: str,
        folders: dict[str, str] | None = None,
        unknown: list[str] | None = None,
    ) -> list[Owner]:
        """The owners of one root; its source is ``path`` (normalised by the trait)."""
        try:
            # In a thread, as the walks: listing a large folder over NFS takes a while.
            targets = await asyncio.to_thread(
                find_targets,
                path,
                Layout.parse(layout_text),
                group_dir_user=self.group_dir_user,
                skip=self.skip_names,
            )
        except OSError as e:
            log.error("Root {path} not sampled: {error}", path=path, error=e)
            self.incomplete = True
            return []
        targets = self.name_targets(targets, folders, [] if unknown is None else unknown)
        known = None
        if self.use_xfs_quota:
            how = XfsQuota(
                self.xfs_quota_command,
                self.xfs_projects_file,
                self.xfs_projid_file,
                self.xfs_quota_timeout,
            )
            known = await project_usage(path, how)
        return await self.measure_targets(targets, known)


__all__ = ["DirectorySampler", "FilesystemSampler", "Target", "find_targets"]
