"""eohub's spawn route: the launch form's Start, which shows a refused launch again.

``POST /hub/eohub/spawn/<user>[/<server>]`` does what JupyterHub's own ``POST
/hub/spawn`` does (the same login, the same ``servers`` scope for that user, the
named-server checks, the spawner's ``options_from_form``, ``spawn_single_user``, and
the redirect to the pending page), except on an expected refusal: a spent budget, a
bad option, a repository or choice the policy refuses. JupyterHub's page then shows the
*default* server's form with its last launch and logs a traceback; this route shows the
form of *that* server with the submitted choices and the reason, and the hub logs the
refusal on one line. An unexpected error is logged once, with its traceback.

The launch form's script posts here (:func:`eohub.spawner.form.render.spawn_route_script`)
once the route is installed with the launch-link handlers, as drop-in 00 does::

    from eohub.spawner.form.hub_routes import use_launch_links
    use_launch_links(c)
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Mapping
from typing import Any

from jupyterhub.handlers.pages import SpawnHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import format_exception, maybe_future, url_escape_path, url_path_join
from tornado import web
from tornado.httputil import url_concat

from eohub.domain.fields import FieldErrors
from eohub.domain.launch.options import REPO_FIELDS, form_to_options, parse_options
from eohub.domain.launch.policy import fallback
from eohub.domain.launch.profile_policy import wants_profile
from eohub.domain.launch.profile_selection import profile_form_to_options, saved_selection
from eohub.domain.launch.repository import RepoRules, check_repository
from eohub.logs import get_logger, is_expected_refusal
from eohub.spawner.context import InvalidLaunchConfig, LaunchContext, context_source
from eohub.spawner.form.hub_pages import EohubPage, spawner_for
from eohub.spawner.form.render import (
    INVALID_CONFIG,
    SPAWN_ROUTE,
    SPAWN_ROUTE_MARK,
    render,
    render_launch_form,
)
from eohub.spawner.repo_launches import RepoLaunchError

log = get_logger(__name__)

#: How long the Start waits for the policy's and the quota's decision before it shows
#: the pending page (which then shows a refusal as JupyterHub's does).
DECISION_SECONDS = 15.0
#: What the form says after an error nobody expected (the log has the details).
UNEXPECTED = "Your server could not be started because of an unexpected error; tell an admin."


def is_expected(error: BaseException) -> bool:
    """Whether ``error`` is a refusal the user can act on, not a fault of the hub."""
    if is_expected_refusal(error):
        return True
    if isinstance(error, web.HTTPError):
        return error.status_code < 500
    return isinstance(error, FieldErrors | RepoLaunchError)


def submitted_options(formdata: Mapping[str, list[str]]) -> dict[str, object]:
    """The form as raw options, for showing it again when it could not be read."""
    try:
        return form_to_options(profile_form_to_options(formdata))
    except ValueError:
        return {}


def repository_trusted(rules: RepoRules | None, options: Mapping[str, object]) -> bool:
    """Whether ``options`` name no repository, or one on the admin's trusted list."""
    if rules is None or options.get("repo") in (None, ""):
        return True
    try:
        request = parse_options({k: options[k] for k in REPO_FIELDS if k in options})
        return check_repository(rules, request).trusted
    except FieldErrors:
        return False  # refused: the form shows why, and warns as for any untrusted one


def resubmitted(context: LaunchContext, options: object) -> LaunchContext:
    """``context`` prefilled with a refused launch's ``options`` in place of the last launch.

    Each choice the user may still make is kept; one they may not is left out (the
    refusal's reason, shown above the form, says why). A repository that is not trusted
    comes back with the warning.
    """
    raw: Mapping[str, object] = options if isinstance(options, Mapping) else {}
    saved, _ = fallback(context.config, context.member, raw)
    saved_profile: Mapping[str, object] = {}
    if wants_profile(context.config, context.member, raw, context.profiles):
        saved_profile, _ = saved_selection(context.profiles, raw)
    return dataclasses.replace(
        context,
        saved=saved,
        saved_profile=saved_profile,
        messages=(),
        untrusted_link=not repository_trusted(context.rules, raw),
    )


class SpawnRouteHandler(EohubPage):
    """``POST`` the launch form; a refused launch comes back with its choices."""

    @web.authenticated
    def post(self, user_name: str, server_name: str | None = None) -> Awaitable[None]:
        result: Awaitable[None] = self._post(user_name=user_name, server_name=server_name or "")
        return result

    @needs_scope("servers")  # type: ignore[untyped-decorator]
    async def _post(self, user_name: str, server_name: str) -> None:
        user = await self.find_for_user(user_name)
        if server_name:
            await self.check_named_server(user, server_name)
        spawner = spawner_for(user, server_name)
        if spawner.ready:
            raise web.HTTPError(400, f"{spawner._log_name} is already running")
        if spawner.pending:
            raise web.HTTPError(400, f"{spawner._log_name} is pending {spawner.pending}")
        if context_source(spawner) is None:
            raise web.HTTPError(404, "This form is served for eohub's spawners only.")
        formdata = {
            k: [b.decode("utf-8", "replace") for b in v]
            for k, v in self.request.body_arguments.items()
        }
        formdata.update({f"{k}_file": v for k, v in self.request.files.items()})
        where = f"{user.name}:{server_name}" if server_name else user.name
        try:
            options = await maybe_future(spawner.run_options_from_form(formdata))
        except Exception as e:
            if is_expected(e):
                log.info("Launch of {server} refused: {reason}", server=where, reason=str(e))
            else:
                log.exception("Unexpected error reading the launch form of {server}", server=where)
            await self.refused(user, server_name, submitted_options(formdata), e)
            return
        try:
            await self.spawn(user, server_name, spawner, options)
        except Exception as e:
            # JupyterHub logged it already: one line for a refusal, a traceback otherwise.
            await self.refused(user, server_name, options, e)

    async def spawn(self, user: Any, server_name: str, spawner: Any, options: Any) -> None:
        """Start the server as JupyterHub's spawn page does; raise a refusal.

        JupyterHub waits one second for the spawn to fail before it sends the user to
        the pending page; this waits until eohub's policy and quota have decided (the
        spawner holds the approved launch) or the spawn failed, at most
        :data:`DECISION_SECONDS`, so that a refusal comes back on the form even on a
        busy hub.
        """
        if spawner._spawn_future and spawner._spawn_future.done():
            spawner._spawn_future = None  # an explicit spawn clears a past failure
        started = asyncio.ensure_future(self.spawn_single_user(user, server_name, options=options))
        # A failure after the redirect is the pending page's to show; retrieve it here,
        # or asyncio logs it again, with a traceback, when the task is collected.
        started.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.wait([started], timeout=1)
        deadline = asyncio.get_running_loop().time() + DECISION_SECONDS
        while not started.done() and getattr(spawner, "launch", None) is None:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.wait([started], timeout=0.1)
        if started.done() and started.exception():
            raise started.exception()
        # JupyterHub's own pending URL: the query (``next``...) is carried as it does.
        self.redirect(SpawnHandler._get_pending_url(self, user, server_name))

    async def refused(
        self, user: Any, server_name: str, options: object, error: Exception
    ) -> None:
        """Show the form of this server again, with ``options`` and the reason."""
        expected = is_expected(error)
        message, html_message = format_exception(error) if expected else (UNEXPECTED, None)
        self.set_status(error.status_code if isinstance(error, web.HTTPError) else 500)
        spawner = spawner_for(user, server_name)  # a fresh one: the refused spawner failed
        spawner.handler = self
        auth_state = await user.get_auth_state()
        await spawner.run_auth_state_hook(auth_state)
        form = await self.refused_form(spawner, options)
        stock = url_path_join(self.hub.base_url, "spawn", user.escaped_name)
        if server_name:
            stock = url_path_join(stock, url_escape_path(server_name))
        query = {k: self.get_argument(k) for k in ("next",) if self.get_argument(k, "")}
        html = await self.render_template(
            "spawn.html",
            for_user=user,
            auth_state=auth_state,
            spawner_options_form=form,
            error_message=message,
            html_error_message=html_message,
            url=url_concat(stock, {**query, "_xsrf": self.xsrf_token.decode("ascii")}),
            spawner=spawner,
        )
        self.finish(html)

    async def refused_form(self, spawner: Any, options: object) -> str:
        source = context_source(spawner)
        assert source is not None  # checked before the spawn
        try:
            context = await source.launch_context()
        except InvalidLaunchConfig as e:
            log.error("The eohub launch config is invalid: {error}", error=e)
            return render(None, error=INVALID_CONFIG)
        return render_launch_form(
            resubmitted(context, options), spawn_route=True, user=getattr(spawner, "user", None)
        )


setattr(SpawnRouteHandler, SPAWN_ROUTE_MARK, True)


def spawn_route_handlers() -> list[tuple[str, type[web.RequestHandler]]]:
    """The spawn route's handlers, for ``c.JupyterHub.extra_handlers``."""
    return [
        (rf"/{SPAWN_ROUTE}/([^/]+)", SpawnRouteHandler),
        (rf"/{SPAWN_ROUTE}/([^/]+)/([^/]+)", SpawnRouteHandler),
    ]


__all__ = [
    "SpawnRouteHandler",
    "is_expected",
    "repository_trusted",
    "resubmitted",
    "spawn_route_handlers",
    "submitted_options",
]
