"""The launch form as HTML: the Jinja environment and the spawners' ``options_form``.

:func:`render_form`, the spawners' default ``options_form``, asks the spawner for the
inputs, builds the view model (:func:`eohub.spawner.form.view.build_form`) and renders it
with the Jinja template ``templates/eohub_launch_form.html``. JupyterHub puts the
fragment inside its own spawn page's ``<form>``, next to its Start button.

The form works without JavaScript: plain radios, checkboxes and inputs with the field
names :mod:`eohub.domain.launch.options` reads. Its script only hides the sizes that the
chosen environment does not offer or that do not fit the chosen group's budget.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from eohub.domain.launch.options import LaunchRequest
from eohub.spawner.form.repo_view import build_repo_form
from eohub.spawner.form.view import LaunchForm, build_form

if TYPE_CHECKING:
    from eohub.spawner.mixin import QuotaSpawnerMixin

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "eohub_launch_form.html"


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(form: LaunchForm | None, *, error: str = "") -> str:
    """The form's HTML fragment; with ``error`` and no form, only that message."""
    return environment().get_template(TEMPLATE).render(form=form, error=error)


def _origin(spawner: QuotaSpawnerMixin) -> str:
    """``scheme://host`` of the request the form is drawn for (JupyterHub sets the
    spawner's ``handler`` before it asks for the form); empty without one."""
    request = getattr(getattr(spawner, "handler", None), "request", None)
    if request is None:
        return ""
    return f"{request.protocol}://{request.host}"


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
    log = spawner.log  # type: ignore[attr-defined]
    try:
        config = spawner.launch_config()
    except ValueError as e:
        log.error("The eohub launch config is invalid: %s", e)
        return render(None, error="The hub's launch config is invalid; tell an admin.")
    member = spawner.member()
    messages: list[str] = []
    if prefill is not None:
        saved = prefill
    else:
        saved, messages = spawner.saved_request(config, member)
    rules = spawner.repo_rules()
    repo = None
    if rules is not None and any(e.repository for e in config.environments.values()):
        repo = build_repo_form(
            rules,
            saved,
            backend=config.backend,
            hub_prefix=getattr(getattr(spawner, "hub", None), "base_url", None) or "/hub/",
            origin=_origin(spawner),
            untrusted_link=untrusted_link,
        )
    try:
        answers = await spawner.budgets(config, member)
    except Exception:
        # The form still works; the spawn's own quota check decides.
        log.exception("Could not ask accounting for the budgets of %s", member.username)
        answers = {}
    form = build_form(
        config,
        member,
        saved,
        messages,
        answers,
        server_name=spawner.name,  # type: ignore[attr-defined]
        repo=repo,
        repo_rules=rules,
    )
    return render(form)


__all__ = ["render", "render_form"]
