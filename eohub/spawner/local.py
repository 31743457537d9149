"""QuotaLocalSpawner: the launch form, policy, quota and ledger for single-machine hubs.

The approved launch maps onto a local process:

- the environment's ``command`` (else ``Spawner.cmd``) and ``env``, plus the group, the
  git identity and (where the environment opts in) the OIDC access token;
- the ``workspace`` volume's ``local_path`` as the working directory, created 0700 on
  first use; ``host_path`` volumes appear there as symbolic links named after their
  mount path's last part, and the links an earlier launch had that this one does not
  (an optional volume left unchecked, a volume no longer allowed) are removed, except
  those another running server of the user (sharing the workspace) uses
  (:mod:`eohub.spawner.local_links`);
- the size as ``MEM_LIMIT``/``CPU_LIMIT`` (and guarantees) in the environment, which
  JupyterLab's resource indicators show.

What is enforced here and what is advisory: the environment, the group charged, the
quota check and the ledger are enforced exactly as on Kubernetes, and so are the
session limits (``idle_timeout``, ``max_duration``): they go with the session's start to
accounting, whose enforcement worker stops the server through the hub, as it does on
Kubernetes (where the pod's deadline is only a backstop). CPU, memory and GPU
sizes are **advisory**: one machine has no cgroup per server here, so a process can use
more than its size (it is charged its size all the same). Read-only is **not
enforced** either: a symbolic link cannot make a directory read-only, so the user can
write wherever the file permissions let them (:attr:`QuotaLocalSpawner.enforces_read_only`
is False, and the form says so). Users run as the system user of their name
(``LocalProcessSpawner``), or, with ``switch_user = False``, as the hub's own user,
which is only for demos and tests.

The spawn page's bar moves through eohub's steps (:mod:`eohub.domain.launch.progress`),
then, while the hub waits for the new server to answer, a little at each second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Bool, Unicode

from eohub.domain.launch.policy import Launch, allowed_volumes
from eohub.domain.launch.progress import Numbering, Step
from eohub.domain.launch.repository import clone_folder, repo_urlpath
from eohub.domain.launch.volumes import expand
from eohub.spawner.local_links import adopt_links, eohub_made_links, link_name, place_links
from eohub.spawner.mixin import QuotaSpawnerMixin
from eohub.spawner.repo_launches import RepoLaunchError

CLONES_KEY = "eohub_clones"
LINKS_KEY = "eohub_links"
#: Seconds between the bar's steps while the hub waits for the server to answer.
TICK_SECONDS = 1.0


class QuotaLocalSpawner(QuotaSpawnerMixin, LocalProcessSpawner):  # type: ignore[misc]
    """LocalProcessSpawner with eohub's launch form, policy, quota and accounting."""

    backend = "local"
    #: A symbolic link cannot make a volume read-only: the form says so.
    enforces_read_only = False

    switch_user = Bool(
        True,
        help="""Run each server as the system user of the same name (True, as
        LocalProcessSpawner does). False runs every server as the hub's own user, with
        no isolation between users: only for demos and tests.""",
    ).tag(config=True)
    fallback_workdir_template = Unicode(
        "",
        help="""The working directory when no ``workspace`` volume applies, with
        ``{username}``; empty: the user's home directory.""",
    ).tag(config=True)

    workdir: str = ""
    #: The volume links this server made (path → target); None: no record yet.
    _eohub_links: dict[str, str] | None = None

    def _admin_values(self) -> dict[str, Any]:
        """The admin's own settings, kept from before the first launch.

        The hub keeps one spawner per server, so each launch must start from these, not
        from what the previous launch set (its command, its token, its workspace).
        """
        saved: dict[str, Any] | None = getattr(self, "_eohub_admin_values", None)
        if saved is None:
            saved = {
                "cmd": list(self.cmd),
                "environment": dict(self.environment),
                "notebook_dir": self.notebook_dir,
            }
            self._eohub_admin_values = saved
        return saved

    def apply_launch(self, launch: Launch) -> None:
        admin = self._admin_values()
        env = launch.environment
        self.cmd = list(env.command) if env.command else list(admin["cmd"])
        self.notebook_dir = admin["notebook_dir"]
        self.workdir = ""
        self.default_url = launch.urlpath
        extra = self.launch_env(launch)
        size = launch.size
        extra["CPU_GUARANTEE"] = str(size.cpu)
        extra["MEM_GUARANTEE"] = str(size.memory)
        if size.cpu_limit is not None:
            extra["CPU_LIMIT"] = str(size.cpu_limit)
        if size.memory_limit is not None:
            extra["MEM_LIMIT"] = str(size.memory_limit)
        self.environment = {**admin["environment"], **extra}
        name = self.user.name
        workspace = next((v for v in launch.volumes if v.kind == "workspace"), None)
        if workspace is not None:
            self.workdir = expand(workspace.local_path, username=name, group=launch.group)
        elif self.fallback_workdir_template:
            self.workdir = expand(self.fallback_workdir_template, username=name)
        self._links = {
            link_name(v): expand(v.path, username=name, group=launch.group)
            for v in launch.volumes
            if v.kind == "host_path"
        }
        if self.workdir:
            self.notebook_dir = self.workdir

    async def start(self) -> Any:
        if self.launch is None:
            await self.authorize_launch(self.user_options)
        if self.workdir:
            self._prepare_workdir()
        return await super().start()

    def _prepare_workdir(self) -> None:
        workdir = Path(self.workdir)
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.switch_user:
            import pwd

            entry = pwd.getpwnam(self.user.name)
            os.chown(workdir, entry.pw_uid, entry.pw_gid)
        made = self._eohub_links
        if made is None:
            made = adopt_links(workdir, self._links_eohub_made())
        # The workspace is the user's, shared by their named servers: the links another
        # server recorded are eohub's too, and those of running servers stay as they are.
        in_use, stopped = self._other_servers_links()
        self._eohub_links = place_links(
            workdir, getattr(self, "_links", {}), {**stopped, **made}, in_use
        )

    def _links_eohub_made(self) -> dict[str, frozenset[str]]:
        """The links eohub may have made for this user before it kept a record of them:
        one per ``host_path`` volume the user may mount, for each of their groups."""
        member = self.member()
        volumes = allowed_volumes(self.launch_config(), member)
        return eohub_made_links(volumes, member.username, sorted(member.groups))

    def _other_servers_links(self) -> tuple[dict[str, str], dict[str, str]]:
        """The volume links the user's other servers recorded: (those of the running
        ones, which this launch must leave alone; those of the stopped ones)."""
        running: dict[str, str] = {}
        stopped: dict[str, str] = {}
        loaded = getattr(self.user, "spawners", None) or {}
        stored = getattr(self.user, "orm_spawners", None) or {}
        for name in {*loaded, *stored} - {self.name}:
            other = dict.get(loaded, name)  # never creates a spawner, as [] would
            if other is not None:
                links = getattr(other, "_eohub_links", None) or {}
                (running if getattr(other, "active", False) else stopped).update(links)
                continue
            # A server the hub has not loaded since it started is not running.
            record = (getattr(stored[name], "state", None) or {}).get(LINKS_KEY)
            if isinstance(record, dict):
                stopped.update({str(k): str(v) for k, v in record.items()})
        return running, stopped

    # -- repository launches: the commit is cloned into the workspace ---------------

    def _owner(self) -> tuple[int, int] | None:
        if not self.switch_user:
            return None
        import pwd

        entry = pwd.getpwnam(self.user.name)
        return entry.pw_uid, entry.pw_gid

    def _clone_root(self) -> Path:
        if self.workdir:
            return Path(self.workdir)
        if self.switch_user:
            return Path(os.path.expanduser(f"~{self.user.name}"))
        raise RepoLaunchError(
            "This hub gives servers no workspace to clone the repository into; tell an admin."
        )

    async def prepare_repository(self, launch: Launch) -> None:
        """Clone the resolved commit into a subfolder of the workspace; open it.

        An existing folder is never changed: it is reused when this hub cloned the same
        commit there, else the clone goes to ``<name>-<commit>``.
        """
        repo = launch.repo
        assert repo is not None
        assert repo.commit is not None
        root = self._clone_root()
        clones: dict[str, str] = dict(getattr(self, "_eohub_clones", None) or {})
        folder = clone_folder(repo.spec)
        progress = self.launch_progress
        if (root / folder).exists() and clones.get(folder) != repo.commit:
            folder = f"{folder}-{repo.commit[:7]}"
        target = root / folder
        if target.exists():
            message = f"Using the clone of commit {repo.commit[:12]} in {folder}/."
            progress.report(Step.CLONE, message, "ready")
        else:
            message = f"Cloning {repo.spec.name} at commit {repo.commit[:12]} into {folder}/."
            progress.report(Step.CLONE, message, "cloning")
            with contextlib.suppress(FileExistsError):  # another launch cloned it meanwhile
                await self.repo_launches.clone(repo, root, folder, self._owner())
            clones[folder] = repo.commit
            self._eohub_clones = clones
        if not launch.urlpath_chosen:
            self.default_url = repo_urlpath(launch.urlpath, folder, repo.filepath)
        progress.report(
            Step.CLONE,
            "No image is built on this single-machine hub: the repository "
            "opens in the environment's own software.",
            "ready",
        )

    # -- progress: the server process, then the wait for it to answer -----------------

    async def backend_progress(self, numbering: Numbering) -> AsyncIterator[dict[str, Any]]:
        """A first message, then a step of the bar each second until the server answers.

        The hub reads this only while the spawn is pending and stops once the server
        answers; it waits at most ``http_timeout`` seconds, and so does this.
        """
        began = time.monotonic()

        def waiting() -> bool:
            pending = bool(getattr(self, "_spawn_pending", False))
            return pending and time.monotonic() - began < self.http_timeout

        yield {
            "progress": numbering.next(Step.BACKEND),
            "message": "Waiting for your server to answer.",
        }
        while waiting():
            await asyncio.sleep(TICK_SECONDS)
            yield {"progress": numbering.next(Step.BACKEND)}

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        clones = getattr(self, "_eohub_clones", None)
        if clones:
            state[CLONES_KEY] = clones
        if self._eohub_links is not None:
            state[LINKS_KEY] = self._eohub_links
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        clones = state.get(CLONES_KEY)
        self._eohub_clones = (
            {str(k): str(v) for k, v in clones.items()} if isinstance(clones, dict) else {}
        )
        links = state.get(LINKS_KEY)
        # No record (a server last launched before eohub kept one): the next launch
        # adopts the links eohub would have made (:func:`adopt_links`).
        self._eohub_links = (
            {str(k): str(v) for k, v in links.items()} if isinstance(links, dict) else None
        )

    def make_preexec_fn(self, name: str) -> Any:
        if self.switch_user:
            return super().make_preexec_fn(name)
        workdir = self.workdir

        def preexec() -> None:
            if workdir:
                os.chdir(workdir)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        if self.switch_user:
            result: dict[str, str] = super().user_env(env)
            return result
        env["USER"] = self.user.name
        env["HOME"] = self.workdir or env.get("HOME", "/tmp")  # noqa: S108 - demo mode only
        env["SHELL"] = "/bin/bash"
        return env

    def move_certs(self, paths: Any) -> Any:
        return paths if not self.switch_user else super().move_certs(paths)
