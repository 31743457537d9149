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
   and a ``poll`` that finds the server gone record its stop
   (:class:`eohub.spawner.ledger.SessionLedger`).

The launch form and the spawn decide from one :class:`~eohub.spawner.context.LaunchContext`
that :meth:`QuotaSpawnerMixin.launch_context` reads once per request.

Admins may replace ``apply_user_options``; ``start`` then still authorizes, so no path
starts a server the policy did not approve.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from tornado import web
from traitlets import Any as AnyTrait
from traitlets import List, Unicode, default

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.fields import FieldErrors
from eohub.domain.identity.profile import UserProfile
from eohub.domain.launch.budget import Budget
from eohub.domain.launch.options import (
    REPO_FIELDS,
    LaunchRequest,
    form_to_options,
    parse_options,
)
from eohub.domain.launch.policy import (
    Launch,
    Member,
    authorize,
    check_charged,
    fallback,
    split_charged,
)
from eohub.domain.launch.profile_policy import wants_profile
from eohub.domain.launch.profile_selection import (
    option_keys,
    profile_form_to_options,
    saved_selection,
    visible_profiles,
)
from eohub.domain.launch.profiles import UNLISTED_SUFFIX, Profile
from eohub.domain.launch.progress import Step
from eohub.domain.launch.repository import RepoRules
from eohub.domain.repos.specs import RepoError
from eohub.logs import attach, get_logger
from eohub.spawner.accounting import shared_client
from eohub.spawner.context import (
    DEFAULT_HUB_PREFIX,
    InvalidLaunchConfig,
    LaunchContext,
    ask_budgets,
    request_origin,
    server_limit_reason,
)
from eohub.spawner.errors import options_error, user_error
from eohub.spawner.form.render import INVALID_CONFIG, render, render_launch_form
from eohub.spawner.launch_progress import LaunchProgress, SpawnProgress, decided_steps
from eohub.spawner.ledger import SessionLedger
from eohub.spawner.metrics import SPAWN_STEP_SECONDS
from eohub.spawner.quota import QuotaCheck
from eohub.spawner.repo_launches import RepoLaunchError, shared_repo_launches
from eohub.spawner.settings import LaunchSettings

log = get_logger(__name__)


async def _apply_launch(spawner: QuotaSpawnerMixin, user_options: dict[str, Any]) -> None:
    await spawner.authorize_launch(user_options)


async def render_form(
    spawner: QuotaSpawnerMixin,
    prefill: LaunchRequest | None = None,
    *,
    untrusted_link: bool = False,
) -> str:
    """The ``options_form`` of eohub's spawners: the launch form for this user.

    ``prefill`` replaces the last launch's choices (a launch link's); with
    ``untrusted_link`` the form warns that its repository is not on the trusted list.
    """
    try:
        context = await spawner.launch_context()
    except InvalidLaunchConfig as e:
        log.error("The eohub launch config is invalid: {error}", error=e)
        return render(None, error=INVALID_CONFIG)
    if prefill is not None:
        context = context.prefilled(prefill, untrusted_link=untrusted_link)
    elif untrusted_link:
        context = dataclasses.replace(context, untrusted_link=True)
    return render_launch_form(context, user=getattr(spawner, "user", None))


class QuotaSpawnerMixin(SessionLedger, QuotaCheck, SpawnProgress, LaunchSettings):
    """The launch form, policy, quota and accounting; mix in before a JupyterHub Spawner."""

    launch: Launch | None = None
    profile: UserProfile | None = None
    quota_answer: QuotaAnswer | None = None
    #: Whether the backend makes a read-only volume read-only; the form says when not.
    enforces_read_only: bool = True

    accounting = AnyTrait(
        help="""The AccountingClient to use. Default: one client per hub process,
        configured by ``c.AccountingClient``.""",
    )

    repo_launches = AnyTrait(
        help="""The RepoLaunches to use. Default: one per hub process, configured by
        ``c.RepoLaunches``.""",
    )

    idle_culler_services = List(
        Unicode(),
        ["jupyterhub-idle-culler", "idle-culler", "cull-idle"],
        help="""The names of the hub services whose stops are recorded with the reason
        ``idle`` in the accounting ledger: idle cullers that run beside eohub's own
        idle limit. Zero to JupyterHub's culler is the service
        ``jupyterhub-idle-culler``; add the name you gave yours in
        ``JupyterHub.services``.""",
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        attach(self.log)  # type: ignore[attr-defined]
        self.launch_progress = LaunchProgress()

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
        return render_form

    # JupyterHub 5 sets a REST body that is not an object on this trait as it is, before
    # its spawn's error handling starts: Spawner's Dict trait would fail there with a
    # TraitError, a 500 and a half-made server. Any value is kept here, and the launch
    # policy refuses it with a 400 as any bad options (JupyterHub 6 refuses it itself).
    user_options = AnyTrait({})

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

    async def launch_context(self, *, form: bool = True) -> LaunchContext:
        """This request's launch inputs, read once (:mod:`eohub.spawner.context`).

        ``form=False`` (the spawn, and a launch link before it is checked) leaves out
        what only the form shows: see :meth:`form_context`. Raises InvalidLaunchConfig naming
        the bad key when the launch config is invalid.
        """
        try:
            config = self.launch_config()
        except ValueError as e:
            raise InvalidLaunchConfig(str(e)) from e
        member = self.member()
        profiles = await self.launch_profiles()
        clash = next((p for p in profiles if p.slug in config.environments), None)
        if clash is not None:
            raise InvalidLaunchConfig(
                f"{clash.path}.slug: {clash.slug!r} is also the name of an environment"
            )
        context = LaunchContext(
            config,
            member,
            self.repo_rules(),
            server_name=self.name,  # type: ignore[attr-defined]
            profiles=visible_profiles(profiles, member.groups),
            enforces_read_only=self.enforces_read_only,
        )
        return await self.form_context(context) if form else context

    async def launch_profiles(self) -> tuple[Profile, ...]:
        """The ``profile_list`` profiles for this user; none unless the backend has them."""
        return ()

    async def form_context(self, context: LaunchContext) -> LaunchContext:
        """``context`` with what only the form shows: the last launch, the budgets left
        (accounting is asked here) and the hub's address for the form's links."""
        last = self._last_options()
        saved, messages = fallback(context.config, context.member, last)
        saved_profile: dict[str, object] = {}
        if isinstance(last, Mapping) and wants_profile(
            context.config, context.member, last, context.profiles
        ):
            saved_profile, dropped = saved_selection(context.profiles, last)
            messages = [*messages, *dropped]
        return dataclasses.replace(
            context,
            saved=saved,
            saved_profile=saved_profile,
            messages=tuple(messages),
            budgets=await ask_budgets(self.accounting, context.config, context.member),
            hub_prefix=getattr(getattr(self, "hub", None), "base_url", None) or DEFAULT_HUB_PREFIX,
            origin=request_origin(getattr(self, "handler", None)),
            start_blocked=await server_limit_reason(self),
        )

    def _last_options(self) -> Any:
        """The options of the last launch that started (kept in the spawner's state).

        Never JupyterHub's ``orm_spawner.user_options``: the hub saves those before the
        spawn is checked, so a refused launch (an untrusted or denied repository, a
        spent budget) would come back prefilled on the next plain ``/hub/spawn``.
        """
        return getattr(self, "_eohub_last_options", None) or {}

    # -- options: read the request, without side effects -------------------------

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return self.read_form

    def read_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """The submitted form as the options REST would send; 400 on bad syntax."""
        return self._read_options(form_to_options(profile_form_to_options(formdata)))

    def options_from_query(self, query_data: dict[str, list[str]]) -> dict[str, Any]:
        # JupyterHub 6 strips the ``opt-`` prefix of /hub/spawn?opt-... links; 5.x does not.
        if any(k.startswith("opt-") for k in query_data):
            query_data = {k[4:]: v for k, v in query_data.items() if k.startswith("opt-")}
        options = self._read_options(form_to_options(profile_form_to_options(query_data)))
        if any(key in options for key in REPO_FIELDS):
            # JupyterHub starts a server straight from /hub/spawn?... links: a crafted
            # link must not start a repository the user never saw.
            raise user_error(
                400,
                "A repository launch starts only after you review it and click Start: "
                "use the launch link (/hub/eohub/launch/<provider>/<spec>) or the form.",
                "Repository launch needs confirmation",
            )
        typed = sorted(k for k in options if k.endswith(UNLISTED_SUFFIX))
        if typed:
            # Nor an image (or any value of a profile's free-text box) the user never saw.
            raise user_error(
                400,
                f"A value of your own ({typed[0]}) is used only after you review it and "
                "click Start on the form; a link can pick only the listed choices.",
                "Own value needs confirmation",
            )
        return options

    def _read_options(self, raw: Mapping[str, object]) -> dict[str, Any]:
        try:
            if raw.get("profile") in (None, ""):
                return dict(parse_options(raw).to_user_options())
            # A profile's options are its own: the policy checks them against it.
            extra = option_keys(raw)
            request = parse_options({k: v for k, v in raw.items() if k not in extra})
            return {**request.to_user_options(), **extra}
        except FieldErrors as e:
            raise options_error(e) from None

    # -- the one enforcement path ----------------------------------------------

    async def authorize_launch(self, user_options: Mapping[str, Any]) -> Launch:
        """Resolve ``user_options`` with the policy and the quota; apply the launch.

        Raises HTTPError 400 (bad options, with field errors) or 403 (quota), before
        anything is created.
        """
        began = time.perf_counter()
        self._quota_seconds = 0.0
        try:
            return await self._authorize_launch(user_options)
        finally:
            policy = time.perf_counter() - began - self._quota_seconds
            SPAWN_STEP_SECONDS.labels(step="policy").observe(max(policy, 0.0))

    async def _authorize_launch(self, user_options: Mapping[str, Any]) -> Launch:
        try:
            context = await self.launch_context(form=False)
        except InvalidLaunchConfig as e:
            log.error("The eohub launch config is invalid: {error}", error=e)
            raise web.HTTPError(500, INVALID_CONFIG) from None
        config, member, rules = context.config, context.member, context.rules
        self._spawn_started_at = None
        raw, charged = split_charged(user_options)
        if isinstance(raw, Mapping) and wants_profile(
            config, member, {**raw, **charged}, context.profiles
        ):
            return await self.authorize_profile_launch(context, raw, charged)
        if isinstance(raw, Mapping) and "environment" not in raw and "profile" in charged:
            # ``profile`` names an environment as it names a profile: one namespace.
            raw = {**raw, "environment": charged["profile"]}
        try:
            request = parse_options(raw)  # type: ignore[arg-type]  # it refuses non-mappings
            first = authorize(config, member, request, None, rules)
            check_charged(charged, first)
        except FieldErrors as e:
            raise options_error(e) from None
        answer = await self.allowed_quota(first)
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
        self.approve(launch, answer)
        return launch

    def approve(self, launch: Launch, answer: QuotaAnswer) -> None:
        """Keep ``launch`` as this spawn's and set the backend's traits from it."""
        self.launch, self.quota_answer = launch, answer
        progress = self.spawn_progress()
        for step, message in decided_steps(launch, answer):
            progress.report(step, message)
        self.user_options = launch.user_options()
        self.apply_launch(launch)

    async def authorize_profile_launch(
        self, context: LaunchContext, raw: Mapping[str, Any], charged: dict[str, object]
    ) -> Launch:
        """A ``profile_list`` launch (backends with profiles override this)."""
        raise user_error(400, "This hub's spawner has no profile list.", "No profiles")

    def repo_rules(self) -> RepoRules | None:
        """The admin's repository rules; None (no repository launches) when invalid."""
        try:
            rules: RepoRules = self.repo_launches.rules()
        except RepoError as e:
            log.error("The eohub repository settings are invalid: {error}", error=e)
            return None
        return rules

    async def prepare_repository(self, launch: Launch) -> None:
        """Make the repository of ``launch`` ready to start: each backend overrides."""
        raise NotImplementedError

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
        progress = self.launch_progress
        progress.begin()
        try:
            if self.launch.repo is not None:
                await self._prepare_repository(self.launch)
            progress.report(Step.START, self.start_message())
        finally:
            # From here the backend's own progress follows (:meth:`backend_progress`).
            progress.close()
        result = await super().start()  # type: ignore[misc]
        self._begin_start_record()
        return result

    async def _prepare_repository(self, launch: Launch) -> None:
        try:
            await self.prepare_repository(launch)
        except (RepoError, RepoLaunchError) as e:
            text = "; ".join(e.errors.values()) if isinstance(e, RepoError) else str(e)
            self.launch_progress.note(f"Repository launch failed: {text}")
            raise user_error(400, f"The repository launch failed: {text}", "Repository") from None

    # -- state ------------------------------------------------------------------------

    def clear_state(self) -> None:
        # A new spawn is authorized afresh; the open session (if any) is kept until its
        # stop is queued.
        super().clear_state()  # type: ignore[misc]
        self.launch = None
        self.quota_answer = None
        # The hub clears the state when a spawn begins and when a server stops: the next
        # spawn's progress log is open from here, for a follower that attaches before
        # the launch is approved (the hub serves progress as soon as the spawn is pending).
        self.spawn_progress()
