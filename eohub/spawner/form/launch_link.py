"""Launch links: ``/hub/eohub/launch/<provider>/<spec>?…`` opens the launch form, filled in.

A launch link never starts anything. It shows the user's own launch form with the
repository, ref and the link's ``environment``, ``size``, ``group``, ``urlpath`` and
``filepath`` (or BinderHub's ``labpath``) filled in, and a warning when the repository
is not on the admin's trusted list; the server starts only when the user clicks Start,
which posts the form with its CSRF token to eohub's spawn route (``/hub/spawn``
without JavaScript). A link that cannot open the form shows a page with the reason and
what can help (stop the running server, launch in a new named server, back to the
form), never a bare error. JupyterHub's own
``/hub/spawn?…`` links start a server at once, so eohub's spawners refuse repository
options there.

Drop-in 00 registers the handlers (:func:`eohub.spawner.form.hub_routes.use_launch_links`,
which adds them to ``c.JupyterHub.extra_handlers`` once and explains JupyterHub's
deprecation warning about that setting): it is still the one way to serve a page under
``/hub/``, which the links need to share the hub's login and CSRF token.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_escape_path, url_path_join
from tornado import web
from tornado.httputil import url_concat

from eohub.domain.fields import FieldErrors
from eohub.domain.launch.options import (
    LaunchRequest,
    OptionsError,
    form_to_options,
    parse_options,
)
from eohub.domain.launch.policy import authorize, visible_environments
from eohub.domain.launch.profile_policy import authorize_profile
from eohub.domain.launch.profile_selection import select_profile
from eohub.domain.launch.repository import (
    BADGE_PATH,
    LAUNCH_PREFIX,
    RepoRules,
    check_repository,
)
from eohub.logs import get_logger
from eohub.spawner.context import InvalidLaunchConfig, LaunchContext, context_source
from eohub.spawner.form.hub_pages import EohubPage, spawner_for
from eohub.spawner.form.link_errors import SERVER_NAME_MAX, SERVER_NAME_PATTERN, link_error_page
from eohub.spawner.form.render import INVALID_CONFIG, render_launch_form
from eohub.spawner.form.spawn_route import spawn_route_handlers

log = get_logger(__name__)

#: How long "Stop the running server and launch" waits for a slow stop to finish.
STOP_WAIT_SECONDS = 60.0

#: Query arguments a link may carry; ``labpath`` is BinderHub's name for ``filepath``.
LINK_QUERY = (
    "environment",
    "profile",
    "size",
    "group",
    "urlpath",
    "filepath",
    "labpath",
    "server",
)

BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="118" height="20" role="img" \
aria-label="launch: eohub"><title>launch: eohub</title><rect width="52" height="20" \
rx="3" fill="#555"/><rect x="49" width="69" height="20" rx="3" fill="#1f6f8b"/>\
<rect x="49" width="6" height="20" fill="#1f6f8b"/><g fill="#fff" font-family="Verdana,\
DejaVu Sans,sans-serif" font-size="11"><text x="7" y="14">launch</text><text x="60" \
y="14">eohub</text></g></svg>"""


def _error_text(error: FieldErrors) -> str:
    return "; ".join(f"{k}: {v}" for k, v in sorted(error.errors.items()))


def check_query(query: Mapping[str, object]) -> None:
    """Refuse (400) a link whose query has an argument a launch link does not take."""
    unknown = sorted(k for k in query if k not in LINK_QUERY)
    if unknown:
        raise web.HTTPError(
            400, f"A launch link takes only {', '.join(LINK_QUERY)}; not {unknown[0]!r}."
        )


def link_request(
    rules: RepoRules | None, link: str, query: Mapping[str, list[bytes]]
) -> LaunchRequest:
    """The launch request of ``link`` (``<provider>/<spec>``) and its query.

    404 when repository launches are not set up (no ``rules``), 400 when the link
    cannot be read. It needs no user: a bad link is refused before the user's auth
    state is read.
    """
    if rules is None:
        raise web.HTTPError(404, "Repository launches are not set up on this hub.")
    try:
        spec = rules.providers.parse_link(link)
    except FieldErrors as e:
        raise web.HTTPError(400, f"This launch link is not valid: {_error_text(e)}") from None
    raw: dict[str, Any] = form_to_options(
        {k: v for k, v in query.items() if k not in ("server", "labpath", "profile")}
    )
    if "labpath" in query and "filepath" not in query:
        raw.update(form_to_options({"filepath": query["labpath"]}))
    raw.update(provider=spec.provider, repo=spec.repo, ref=spec.ref)
    try:
        return parse_options(raw)
    except FieldErrors as e:
        raise web.HTTPError(400, f"This launch link is not valid: {_error_text(e)}") from None


def check_link(
    context: LaunchContext, request: LaunchRequest, profile: str = ""
) -> tuple[LaunchRequest, bool]:
    """The request with its environment; refuse (403) what the policy refuses.

    Also says whether the repository is outside the trusted list. ``profile`` names a
    ``profile_list`` profile that builds images, to launch the repository with instead
    of a repository environment.
    """
    config, member, rules = context.config, context.member, context.rules
    assert rules is not None  # link_request refuses a hub without repository launches
    try:
        repo = check_repository(rules, request)
    except FieldErrors as e:
        raise web.HTTPError(403, f"This repository cannot be launched: {_error_text(e)}") from None
    if profile:
        check_profile_link(context, request, profile)
        return request, not repo.trusted
    repo_envs = [e for e in visible_environments(config, member) if e.repository]
    if not repo_envs:
        raise web.HTTPError(403, "You may not launch repositories on this hub.")
    if request.environment is None:
        request = dataclasses.replace(request, environment=repo_envs[0].name)
    try:
        authorize(config, member, request, None, rules)
    except FieldErrors as e:
        _refuse_link(e, request)
    return request, not repo.trusted


def _refuse_link(error: FieldErrors, request: LaunchRequest) -> None:
    """403 with the policy's reasons, unless only the group is missing: which group to
    charge is the user's choice on the form."""
    problems = {k: v for k, v in error.errors.items() if k != "group" or request.group}
    if problems:
        raise web.HTTPError(
            403, f"This launch link cannot be used: {_error_text(OptionsError(problems))}"
        ) from None


def check_profile_link(context: LaunchContext, request: LaunchRequest, profile: str) -> None:
    """Refuse (403) a link to a profile this user may not build with."""
    building = [p for p in context.profiles if p.repository]
    if request.environment is not None or request.size is not None:
        raise web.HTTPError(400, "A launch link names an environment or a profile, not both.")
    try:
        selection = select_profile(building, profile, {}, building=True)
        authorize_profile(context.config, context.member, request, selection, context.rules)
    except FieldErrors as e:
        _refuse_link(e, request)


def link_profile_prefill(request: LaunchRequest, profile: str) -> dict[str, object]:
    """The form's profile choices for a link to ``profile``: it builds the link's repository."""
    if not profile:
        return {}
    prefill: dict[str, object] = {"profile": profile}
    prefill.update(request.to_user_options())
    return prefill


class LaunchLinkHandler(EohubPage):
    """Shows the launch form of a launch link; never starts a server.

    A link that cannot open the form shows why, with what can help
    (:mod:`eohub.spawner.form.link_errors`); the page's "Stop the running server and
    launch" posts back here. The scopes are those of JupyterHub's own pages: ``servers``
    to open the form of (and so create) a server, ``delete:servers`` to stop one.
    """

    @web.authenticated
    async def get(self, _path: str) -> None:
        try:
            server_name = self.link_server_name()
        except web.HTTPError as e:
            await self.show_refusal(e)
            return
        await self._get(user_name=self.current_user.name, server_name=server_name)

    @needs_scope("servers")  # type: ignore[untyped-decorator]
    async def _get(self, user_name: str, server_name: str) -> None:
        try:
            await self.show_form(server_name)
        except InvalidLaunchConfig as e:
            log.error("The eohub launch config is invalid: {error}", error=e)
            await self.show_refusal(web.HTTPError(500, INVALID_CONFIG))
        except web.HTTPError as e:
            if e.status_code >= 500:
                raise
            await self.show_refusal(e)

    def link_path(self) -> str:
        """The link, ``<provider>/<spec>``, from the raw path: tornado's decoded argument
        would turn a git spec's %2F into '/'."""
        prefix = url_path_join(self.hub.base_url, LAUNCH_PREFIX) + "/"
        return str(self.request.path[len(prefix) :])

    def link_server_name(self) -> str:
        """The link's ``server``, once its query and that name are valid (else 400).

        Checked before anything else, so that a bad name is one quiet line in the log,
        and never reaches a page or a URL.
        """
        check_query(dict(self.request.query_arguments))
        server_name: str = self.get_argument("server", "")
        self.check_server_name(self.current_user, server_name)
        return server_name

    async def show_form(self, server_name: str) -> None:
        user = self.current_user
        if server_name:
            await self.check_named_server(user, server_name)
        spawner = spawner_for(user, server_name)
        source = context_source(spawner)
        if source is None:
            raise web.HTTPError(404, "Launch links need one of eohub's spawners.")
        # A link that cannot be read is refused first: stopping the server would not help.
        query = dict(self.request.query_arguments)
        request = link_request(source.repo_rules(), self.link_path(), query)
        auth_state = await user.get_auth_state()
        if not spawner.active:
            # As JupyterHub's spawn page does: a running server's spawner is left as it
            # started, and decides from the groups it started with.
            await spawner.run_auth_state_hook(auth_state)
            spawner.handler = self  # for the form's links
        # The link is checked against the user's policy before accounting is asked for
        # the form's budgets, and before the running server is: stopping it is offered
        # only for a link that would then open the form.
        context = await source.launch_context(form=False)
        profile = self.get_argument("profile", "")
        request, untrusted = check_link(context, request, profile)
        if spawner.active:
            which = f"Your server {server_name!r}" if server_name else "Your server"
            raise web.HTTPError(
                409, f"{which} is running; a launch link fills in the form of a stopped server."
            )
        context = await source.form_context(context)
        prefilled = context.prefilled(request, untrusted_link=untrusted)
        if profile:
            prefilled = dataclasses.replace(
                prefilled, saved_profile=link_profile_prefill(request, profile)
            )
        form = render_launch_form(prefilled, user=user)
        await self.finish_form(user, spawner, auth_state, form)

    async def finish_form(self, user: Any, spawner: Any, auth_state: Any, form: str) -> None:
        """JupyterHub's spawn page with ``form``, posting to the spawn of that server.

        The server name is escaped: JupyterHub 5 writes the form's action unescaped.
        """
        spawn_url = url_path_join(
            self.hub.base_url, "spawn", user.escaped_name, url_escape_path(spawner.name)
        )
        html = await self.render_template(
            "spawn.html",
            for_user=user,
            auth_state=auth_state,
            spawner_options_form=form,
            error_message="",
            html_error_message="",
            url=url_concat(spawn_url, {"_xsrf": self.xsrf_token.decode("ascii")}),
            spawner=spawner,
        )
        self.finish(html)

    async def show_refusal(self, error: web.HTTPError) -> None:
        """The error page of a link that cannot open the form (one log line, no trace)."""
        user = self.current_user
        reason = str(error.log_message or error.reason or "")
        if error.status_code < 500:
            log.info("Launch link of {user} refused: {reason}", user=user.name, reason=reason)
        server_name = self.get_argument("server", "")
        if server_name not in user.orm_spawners:
            server_name = ""  # a name the link may not use is not repeated on the page
        spawner = user.spawners.get(server_name) if server_name in user.spawners else None
        query = {k: self.get_argument(k) for k in self.request.query_arguments}
        page = link_error_page(
            error.status_code,
            reason,
            hub_prefix=self.hub.base_url,
            username=user.name,
            server_name=server_name,
            link_path=self.request.path,
            query=query,
            running=bool(spawner is not None and spawner.active),
            room_for_server=await self.named_server_room(user),
            taken=tuple(user.orm_spawners),
        )
        self.set_status(error.status_code)
        html = await self.render_template(
            "eohub_link_error.html",
            page=page,
            name_pattern=SERVER_NAME_PATTERN,
            name_max=SERVER_NAME_MAX,
        )
        self.finish(html)

    @web.authenticated
    async def post(self, _path: str) -> None:
        """Stop the link's server, then open the link ("Stop the running server and launch")."""
        try:
            server_name = self.link_server_name()
        except web.HTTPError as e:
            await self.show_refusal(e)
            return
        await self._post(user_name=self.current_user.name, server_name=server_name)

    @needs_scope("delete:servers")  # type: ignore[untyped-decorator]
    async def _post(self, user_name: str, server_name: str) -> None:
        user = self.current_user
        if self.get_body_argument("action", "") != "stop":
            await self.show_refusal(web.HTTPError(400, "A launch link only takes a stop request."))
            return
        spawner = user.spawners.get(server_name) if server_name in user.spawners else None
        if spawner is not None and spawner.active and not spawner.pending:
            await self.stop_single_user(user, server_name)
            stopping = getattr(spawner, "_stop_future", None)
            if stopping is not None and not stopping.done():
                # Slow backends: the link's form needs the server stopped, not stopping.
                await asyncio.wait([asyncio.shield(stopping)], timeout=STOP_WAIT_SECONDS)
        self.redirect(self.request.uri, status=303)


class BadgeHandler(web.RequestHandler):
    """The launch badge's image: public, as README pages fetch it without a login."""

    def get(self) -> None:
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.finish(BADGE_SVG)


def launch_link_handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """The handlers for ``c.JupyterHub.extra_handlers``: launch links, their badge, and
    eohub's spawn route (:mod:`eohub.spawner.form.spawn_route`)."""
    return [
        (rf"/{LAUNCH_PREFIX}/(.+)", LaunchLinkHandler),
        (rf"/{BADGE_PATH.replace('.', '[.]')}", BadgeHandler),
        *spawn_route_handlers(),
    ]


__all__ = [
    "BadgeHandler",
    "LaunchLinkHandler",
    "check_link",
    "check_query",
    "launch_link_handlers",
    "link_request",
]
