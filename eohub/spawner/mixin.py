"""QuotaSpawnerMixin: one launch policy, one quota check and one ledger for any backend.

The flow of a spawn, whichever way its options came (the form, ``/hub/spawn?...``, or
REST ``user_options``):

1. ``options_from_form`` / :meth:`options_from_query` only read the request into
   the raw options dict REST would send (no side effects, as JupyterHub asks).
2. ``apply_user_options`` (JupyterHub >= 5.3, before anything is created) parses the
   options with the one schema, resolves them with the one policy function
   (:func:`eohub.domain.launch.policy.authorize`), asks accounting for the quota once,
   and applies the approved launch to the backend's traits. Bad options are a 400 with
   the field errors; a spent budget is a 403 with the reason.
3. ``start`` creates the server, and the start goes to the accounting outbox; ``stop``
   and a ``poll`` that finds the server gone record its stop.

Admins may replace ``apply_user_options``; ``start`` then still authorizes, so no path
starts a server the policy did not approve.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from tornado import web
from traitlets import Any as AnyTrait
from traitlets import default

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.fields import FieldErrors
from eohub.domain.identity.profile import UserProfile
from eohub.domain.launch.budget import Budget
from eohub.domain.launch.config import LaunchConfig
from eohub.domain.launch.options import (
    REPO_FIELDS,
    form_to_options,
    parse_options,
)
from eohub.domain.launch.policy import (
    Launch,
    Member,
    authorize,
    chargeable_groups,
    check_charged,
    fallback,
    split_charged,
)
from eohub.domain.launch.repository import RepoRules
from eohub.domain.repos.specs import RepoError
from eohub.spawner.accounting import shared_client
from eohub.spawner.repo_launches import RepoLaunchError, shared_repo_launches
from eohub.spawner.repo_progress import RepoProgress
from eohub.spawner.settings import LaunchSettings

STATE_KEY = "eohub_session"
LAST_OPTIONS_KEY = "eohub_last_options"


def utcnow() -> datetime:
    """Now, in UTC; module-level so tests can travel in time."""
    return datetime.now(UTC)


def user_error(status: int, message: str, reason: str) -> web.HTTPError:
    """An HTTPError whose message the spawn page and the REST API show as it is.

    JupyterHub replaces a failed spawn's ``reason`` with "error" and prints the raw
    exception on the spawn page, unless the error carries ``jupyterhub_message``.
    """
    error = web.HTTPError(status, message, reason=reason)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


def options_error(error: FieldErrors) -> web.HTTPError:
    """A 400 whose message lists every bad field, as the form and REST clients show it."""
    fields = "; ".join(f"{k}: {v}" for k, v in sorted(error.errors.items()))
    return user_error(400, f"Invalid launch options ({fields})", "Invalid options")


async def _apply_launch(spawner: QuotaSpawnerMixin, user_options: dict[str, Any]) -> None:
    await spawner.authorize_launch(user_options)


class QuotaSpawnerMixin(LaunchSettings):
    """The launch form, policy, quota and accounting; mix in before a JupyterHub Spawner."""

    launch: Launch | None = None
    profile: UserProfile | None = None
    quota_answer: QuotaAnswer | None = None
    repo_progress: RepoProgress = RepoProgress.closed()
    _spawn_started_at: datetime | None = None

    accounting = AnyTrait(
        help="""The AccountingClient to use. Default: one client per hub process,
        configured by ``c.AccountingClient``.""",
    )

    repo_launches = AnyTrait(
        help="""The RepoLaunches to use. Default: one per hub process, configured by
        ``c.RepoLaunches``.""",
    )

    @default("accounting")
    def _default_accounting(self) -> Any:
        return shared_client(self.config)

    @default("repo_launches")
    def _default_repo_launches(self) -> Any:
        return shared_repo_launches(self.config)

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return _apply_launch

    @default("options_form")
    def _default_options_form(self) -> Any:
        from eohub.spawner.form.render import render_form

        return render_form

    # -- who is asking ---------------------------------------------------------

    async def run_auth_state_hook(self, auth_state: Any) -> None:
        self.profile = UserProfile.from_auth_state(auth_state)
        self._access_token = (auth_state or {}).get("access_token") or ""
        await super().run_auth_state_hook(auth_state)  # type: ignore[misc]

    def member(self) -> Member:
        """The user and their canonical groups, from auth_state or the hub's groups."""
        user = self.user  # type: ignore[attr-defined]
        if self.profile is not None:
            groups = frozenset(self.profile.groups)
        else:
            groups = frozenset(g.name for g in user.groups)
        return Member(user.name, groups)

    # -- options: read the request, without side effects -------------------------

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return self.read_form

    def read_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """The submitted form as the options REST would send; 400 on bad syntax."""
        return self._read_options(form_to_options(formdata))

    def options_from_query(self, query_data: dict[str, list[str]]) -> dict[str, Any]:
        options = self._read_options(form_to_options(query_data))
        if any(key in options for key in REPO_FIELDS):
            # JupyterHub starts a server straight from /hub/spawn?... links: a crafted
            # link must not start a repository the user never saw.
            raise user_error(
                400,
                "A repository launch starts only after you review it and click Start: "
                "use the launch link (/hub/eohub/launch/<provider>/<spec>) or the form.",
                "Repository launch needs confirmation",
            )
        return options

    def _read_options(self, raw: Mapping[str, object]) -> dict[str, Any]:
        try:
            return dict(parse_options(raw).to_user_options())
        except FieldErrors as e:
            raise options_error(e) from None

    # -- the one enforcement path ----------------------------------------------

    async def authorize_launch(self, user_options: Mapping[str, Any]) -> Launch:
        """Resolve ``user_options`` with the policy and the quota; apply the launch.

        Raises HTTPError 400 (bad options, with field errors) or 403 (quota), before
        anything is created.
        """
        try:
            config = self.launch_config()
        except ValueError as e:
            self.log.error("The eohub launch config is invalid: %s", e)  # type: ignore[attr-defined]
            raise web.HTTPError(
                500, "The hub's launch config is invalid; tell an admin."
            ) from None
        member = self.member()
        rules = self.repo_rules()
        self._spawn_started_at = None
        raw, charged = split_charged(user_options)
        try:
            request = parse_options(raw)  # type: ignore[arg-type]  # it refuses non-mappings
            first = authorize(config, member, request, None, rules)
            check_charged(charged, first)
        except FieldErrors as e:
            raise options_error(e) from None
        answer = await self.check_quota(first)
        if not answer.allowed:
            raise user_error(403, answer.reason, "Quota")
        budgets: dict[str, Budget] = (
            {first.group: dict(answer.budget_left)} if answer.budget_left else {}
        )
        try:
            launch = authorize(config, member, request, budgets, rules)
            check_charged(charged, launch)
            if launch.repo is not None:
                assert rules is not None  # authorize refuses a repository without rules
                repo = await self.repo_launches.resolve(launch.repo, rules)
                launch = dataclasses.replace(launch, repo=repo)
        except FieldErrors as e:
            raise options_error(e) from None
        self.launch, self.quota_answer = launch, answer
        self.repo_progress = RepoProgress()
        self.user_options = launch.user_options()
        self.apply_launch(launch)
        return launch

    def repo_rules(self) -> RepoRules | None:
        """The admin's repository rules; None (no repository launches) when invalid."""
        try:
            rules: RepoRules = self.repo_launches.rules()
        except RepoError as e:
            self.log.error("The eohub repository settings are invalid: %s", e)  # type: ignore[attr-defined]
            return None
        return rules

    async def prepare_repository(self, launch: Launch) -> None:
        """Make the repository of ``launch`` ready to start: each backend overrides."""
        raise NotImplementedError

    async def check_quota(self, launch: Launch) -> QuotaAnswer:
        resources = launch.size.charged
        answer: QuotaAnswer = await self.accounting.check_quota(
            user=self.user.name,  # type: ignore[attr-defined]
            group=launch.group,
            cpu=resources.millicores / 1000,
            memory_bytes=resources.memory_bytes,
            gpus=resources.gpus,
        )
        return answer

    def apply_launch(self, launch: Launch) -> None:
        """Set the backend's traits from an approved launch (each backend overrides)."""
        raise NotImplementedError

    def launch_env(self, launch: Launch) -> dict[str, str]:
        """Environment variables every backend sets: group, git identity, optional token."""
        env = dict(launch.environment.env)
        env["EOHUB_GROUP"] = launch.group
        env["EOHUB_ENVIRONMENT"] = launch.environment.name
        env["EOHUB_SIZE"] = launch.size.name
        if self.profile is not None:
            if self.profile.git_name:
                env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = self.profile.git_name
            if self.profile.git_email:
                env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = self.profile.git_email
        token = getattr(self, "_access_token", "")
        if launch.environment.pass_access_token and token:
            env["EOHUB_ACCESS_TOKEN"] = token
        return env

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> Any:
        if self.launch is None:
            # apply_user_options was replaced by the admin: the policy still decides.
            await self.authorize_launch(self.user_options)
        assert self.launch is not None
        if self.launch.repo is not None:
            await self._prepare_repository(self.launch)
        result = await super().start()  # type: ignore[misc]
        await self._record_start()
        return result

    async def _prepare_repository(self, launch: Launch) -> None:
        progress = self.repo_progress
        try:
            await self.prepare_repository(launch)
        except (RepoError, RepoLaunchError) as e:
            text = "; ".join(e.errors.values()) if isinstance(e, RepoError) else str(e)
            progress.report(f"Repository launch failed: {text}")
            raise user_error(400, f"The repository launch failed: {text}", "Repository") from None
        finally:
            progress.close()

    async def stop(self, now: bool = False) -> None:
        # Backends poll while they stop; the server ending then is this stop, not a crash.
        self._stopping = True
        try:
            await super().stop(now=now)  # type: ignore[misc]
        finally:
            self._stopping = False
        await self._record_stop("stopped")

    async def poll(self) -> int | None:
        status: int | None = await super().poll()  # type: ignore[misc]
        stopping = getattr(self, "_stopping", False)
        if status is not None and self._session is not None and not stopping:
            # The hub found the server gone (it crashed, or ended while the hub was down).
            await self._record_stop("failed")
        return status

    # -- accounting ---------------------------------------------------------------

    # The open session survives clear_state(), which backends call from poll() when they
    # find the server gone: it is dropped only once its stop is queued.
    @property
    def _session(self) -> dict[str, Any] | None:
        return getattr(self, "_eohub_session", None)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()  # type: ignore[misc]
        if self._session is not None:
            state[STATE_KEY] = self._session
        last = getattr(self, "_eohub_last_options", None)
        if last:
            state[LAST_OPTIONS_KEY] = last
        return state

    def clear_state(self) -> None:
        # A new spawn is authorized afresh; the open session (if any) is kept until its
        # stop is queued.
        super().clear_state()  # type: ignore[misc]
        self.launch = None
        self.quota_answer = None

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        session = state.get(STATE_KEY)
        self._eohub_session = session if isinstance(session, dict) else None
        last = state.get(LAST_OPTIONS_KEY)
        self._eohub_last_options = last if isinstance(last, dict) else None

    def _started_at(self) -> datetime:
        """When this spawn started, as the session's key; the same for the whole spawn.

        The hub's own start time (``orm_spawner.started``, set before the options are
        applied) is used where there is one: the reconcile loop opens sessions with it
        too, so both records of one server are one session.
        """
        known: datetime | None = getattr(self, "_spawn_started_at", None)
        if known is not None:
            return known
        orm_spawner = getattr(self, "orm_spawner", None)
        started = getattr(orm_spawner, "started", None)
        if started is None:
            started = utcnow()
        elif started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        self._spawn_started_at = started
        return started

    async def _record_start(self) -> None:
        launch = self.launch
        assert launch is not None
        started_at = self._started_at()
        resources = launch.size.charged
        session = {"started_at": started_at.isoformat(), "group": launch.group}
        try:
            await self.accounting.record_start(
                user=self.user.name,  # type: ignore[attr-defined]
                server=self.name,  # type: ignore[attr-defined]
                started_at=started_at,
                group=launch.group,
                cpu=resources.millicores / 1000,
                memory_bytes=resources.memory_bytes,
                gpus=resources.gpus,
                profile=launch.environment.name,
                image=launch.environment.image or (launch.repo and launch.repo.image) or "",
            )
        except Exception:
            # The reconcile loop opens the session from the hub's list of servers.
            self.log.exception("Could not queue the accounting start of %s", self._log_name)  # type: ignore[attr-defined]
        self._eohub_session = session
        # The form prefills the last choices that started a server; JupyterHub's own
        # saved options are the last ones asked for, refused or not.
        self._eohub_last_options = dict(self.user_options)

    async def _record_stop(self, reason: str) -> None:
        session = self._session
        if session is None:
            return
        self._eohub_session = None
        try:
            await self.accounting.record_stop(
                user=self.user.name,  # type: ignore[attr-defined]
                server=self.name,  # type: ignore[attr-defined]
                started_at=datetime.fromisoformat(session["started_at"]),
                stopped_at=utcnow(),
                reason=reason,
            )
        except Exception:
            self.log.exception("Could not queue the accounting stop of %s", self._log_name)  # type: ignore[attr-defined]

    # -- progress -------------------------------------------------------------------

    def launch_messages(self) -> list[str]:
        """Plain-words progress of eohub's own steps, shown before the backend's."""
        launch, answer = self.launch, self.quota_answer
        if launch is None:
            return []
        lines = [
            f"Launching {launch.environment.display_name}, size {launch.size.display_name}, "
            f"charged to {launch.group}."
        ]
        if answer is not None and answer.source != "service":
            lines.append(f"Quota not checked: {answer.reason}")
        elif answer is not None:
            left = answer.budget_left.get("core_hours") if answer.budget_left else None
            budget = "no core-hour limit" if left is None else f"{left:.1f} core-hours left"
            lines.append(f"Quota check passed: {budget}.")
        repo = launch.repo
        if repo is not None and repo.commit is not None:
            lines.append(
                f"Repository {repo.spec.name} at {repo.spec.ref}: commit {repo.commit[:12]}."
            )
        return lines

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        for i, message in enumerate(self.launch_messages()):
            yield {"progress": 5 + i, "message": message}
        if self.launch is not None and self.launch.repo is not None:
            async for message in self.repo_progress.follow():
                yield {"progress": 10, "message": message}
        parent = getattr(super(), "progress", None)
        if parent is not None:
            async for event in parent():
                yield event

    # -- the form -----------------------------------------------------------------

    async def budgets(self, config: LaunchConfig, member: Member) -> dict[str, QuotaAnswer]:
        """The quota answer of each group the user may charge, asked in parallel."""
        groups = chargeable_groups(config, member)
        if not groups or not config.sizes:
            return {}
        smallest = min(config.sizes.values(), key=lambda s: (s.gpus, s.cpu, s.memory))
        charged = smallest.charged
        answers = await asyncio.gather(
            *(
                self.accounting.check_quota(
                    user=member.username,
                    group=g,
                    cpu=charged.millicores / 1000,
                    memory_bytes=charged.memory_bytes,
                    gpus=0,
                )
                for g in groups
            )
        )
        return dict(zip(groups, answers, strict=True))

    def saved_request(self, config: LaunchConfig, member: Member) -> tuple[Any, list[str]]:
        saved = getattr(self, "_eohub_last_options", None)
        if not saved:
            saved = self.orm_spawner.user_options or {}  # type: ignore[attr-defined]
        return fallback(config, member, saved)
