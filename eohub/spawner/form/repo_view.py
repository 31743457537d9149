"""The launch form's repository section: what to build, the launch link and its badge.

Shown when the user may launch an environment with ``repository: true``. It holds only
what the page shows: the providers' names and public base URLs, the prefilled fields,
the launch link of the prefilled repository, and the warning for a link to a repository
outside the admin's trusted list.
"""

from __future__ import annotations

from dataclasses import dataclass

from eohub.domain.launch.config import Backend
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.repository import (
    BADGE_PATH,
    LAUNCH_PREFIX,
    RepoRules,
    badges,
    launch_path,
    spec_from_request,
)
from eohub.domain.repos.specs import RepoError

NOTES: dict[Backend, str] = {
    "local": (
        "No image is built on this single-machine hub: the repository is cloned into "
        "a folder of your workspace and opens in the environment's own software."
    ),
    "kube": (
        "The repository's environment is built into an image once per commit (its "
        "environment.yml, requirements.txt or Dockerfile), then reused: later launches "
        "of the same commit start at once."
    ),
}
UNTRUSTED = (
    "This repository is not on this hub's trusted list. Its code will run with your "
    "account, your storage and your group's budget: start it only if you trust where it "
    "came from."
)


@dataclass(frozen=True)
class ProviderView:
    key: str
    display_name: str
    base_url: str  # empty for plain git URLs


@dataclass(frozen=True)
class RepoFormView:
    """The repository fields, prefilled, and the link and badges of the prefill."""

    providers: tuple[ProviderView, ...]
    provider: str
    repo: str
    ref: str
    filepath: str
    launch_base: str  # the hub's launch-link prefix, e.g. /hub/eohub/launch/
    badge_path: str
    link: str
    markdown: str
    html: str
    note: str
    warning: str


def build_repo_form(
    rules: RepoRules,
    saved: LaunchRequest,
    *,
    backend: Backend,
    hub_prefix: str,
    origin: str = "",
    untrusted_link: bool = False,
) -> RepoFormView:
    """The repository section, prefilled from ``saved`` (a launch link or the last launch).

    ``hub_prefix`` is the hub's URL path (``/hub/``) and ``origin`` its public
    ``scheme://host``, from the request, so that the link and badges can be shared as
    they are rendered; the page's script updates them as the user types.
    """
    prefix = hub_prefix.rstrip("/") + "/"
    link = markdown = html = ""
    if saved.repo is not None:
        try:
            spec = spec_from_request(rules.providers, saved)
        except RepoError:
            spec = None
        if spec is not None:
            query = {"filepath": saved.filepath or "", "environment": saved.environment or ""}
            link = origin + prefix + launch_path(rules.providers, spec, query)
            markdown, html = badges(link, origin + prefix + BADGE_PATH)
    providers = tuple(
        ProviderView(key, provider.display_name, str(getattr(provider, "base_url", "")))
        for key, provider in rules.providers.providers.items()
    )
    return RepoFormView(
        providers=providers,
        provider=saved.provider or "",
        repo=saved.repo or "",
        ref=saved.ref or "",
        filepath=saved.filepath or "",
        launch_base=prefix + LAUNCH_PREFIX + "/",
        badge_path=prefix + BADGE_PATH,
        link=link,
        markdown=markdown,
        html=html,
        note=NOTES[backend],
        warning=UNTRUSTED if untrusted_link else "",
    )


__all__ = ["UNTRUSTED", "ProviderView", "RepoFormView", "build_repo_form"]
