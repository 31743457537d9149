"""A launch from a git repository, as the launch policy sees it.

An environment with ``repository: true`` takes the ``provider``, ``repo``, ``ref`` and
``filepath`` options. :func:`check_repository` turns them into a :class:`RepoLaunch`
with the admin's :class:`RepoRules` (providers and policy), before anything touches the
network; the adapters then resolve the ref to a commit and, on Kubernetes, find or
build the image named by :func:`eohub.domain.repos.images.repo_image_name`, so that the
image reaching a pod is always the one computed here from the resolved spec.

Launch links and badges (:func:`launch_path`, :func:`badges`) and where a clone lands
on the local backend (:func:`clone_folder`, :func:`repo_urlpath`) are plain functions
of the spec too.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from html import escape as html_escape
from urllib.parse import quote, urlencode, urlsplit

from eohub.domain.launch.options import LaunchRequest
from eohub.domain.repos.images import repo_image_name
from eohub.domain.repos.policy import RepoCheck, RepoPolicy
from eohub.domain.repos.specs import RepoError, RepoProviders, RepoSpec, is_commit, parse_url

#: The path, under the hub's prefix, of launch links: ``<prefix>/<provider>/<spec>``.
LAUNCH_PREFIX = "eohub/launch"
BADGE_PATH = "eohub/badge.svg"
_FOLDER = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class RepoRules:
    """The admin's repository settings: which providers, which repositories, which images."""

    providers: RepoProviders
    policy: RepoPolicy
    image_prefix: str = ""


@dataclass(frozen=True)
class RepoLaunch:
    """An allowed repository launch; ``commit`` and ``image`` are set once resolved."""

    check: RepoCheck
    filepath: str | None = None
    commit: str | None = None
    image: str | None = None

    @property
    def spec(self) -> RepoSpec:
        return self.check.spec

    @property
    def trusted(self) -> bool:
        return self.check.trusted

    def resolved(self, commit: str, rules: RepoRules) -> RepoLaunch:
        """This launch at ``commit``, with the image the builder must produce for it."""
        if not is_commit(commit):
            raise RepoError("ref", f"{commit!r} is not a commit id")
        image = (
            repo_image_name(rules.providers, self.spec, commit, rules.image_prefix)
            if rules.image_prefix
            else None
        )
        return dataclasses.replace(self, commit=commit, image=image)

    def user_options(self) -> dict[str, object]:
        options: dict[str, object] = {
            "provider": self.spec.provider,
            "repo": self.spec.repo,
            "ref": self.spec.ref,
        }
        if self.filepath is not None:
            options["filepath"] = self.filepath
        return options


def detect_provider(providers: RepoProviders, repo: str) -> tuple[str, str]:
    """``(provider key, repo)`` for a pasted repository without a provider.

    A URL on a configured GitHub or GitLab host is read as that provider's
    ``owner/name`` (so ``https://github.com/org/repo`` and ``gh`` + ``org/repo`` are
    the same launch); any other URL is a plain ``git`` repository.
    """
    if "://" not in repo:
        raise RepoError("provider", "choose a provider, or paste the repository's URL")
    parsed = parse_url(repo)
    for key, provider in providers.providers.items():
        base = getattr(provider, "base_url", None)
        if not isinstance(base, str):
            continue
        base_url = parse_url(base.rstrip("/") + "/x", field="provider")
        prefix = base_url.path.removesuffix("x")
        same_port = urlsplit(repo).port == urlsplit(base).port
        if parsed.host == base_url.host and parsed.scheme == base_url.scheme and same_port:
            path = parsed.path
            if prefix and not path.startswith(prefix):
                continue
            return key, path[len(prefix) :]
    return "git", repo


def spec_from_request(providers: RepoProviders, request: LaunchRequest) -> RepoSpec:
    """The :class:`RepoSpec` the request's repository options name."""
    if request.repo is None:
        raise RepoError("repo", "name the repository to launch")
    provider, repo = request.provider, request.repo
    if provider is None:
        provider, repo = detect_provider(providers, repo)
    elif provider != "git" and "://" in repo:
        found, path = detect_provider(providers, repo)
        if found != provider:
            raise RepoError("repo", f"is not a repository of provider {provider!r}")
        repo = path
    return providers.from_fields(provider, repo, request.ref or "HEAD")


def check_repository(rules: RepoRules, request: LaunchRequest) -> RepoLaunch:
    """Allow the request's repository or raise :class:`RepoError` naming the field."""
    spec = spec_from_request(rules.providers, request)
    return RepoLaunch(rules.policy.check(spec, rules.providers), request.filepath)


def launch_path(
    providers: RepoProviders, spec: RepoSpec, query: dict[str, str] | None = None
) -> str:
    """The launch link for ``spec``, relative to the hub's prefix (``/hub/``)."""
    path = f"{LAUNCH_PREFIX}/{providers.link(spec)}"
    extra = {k: v for k, v in (query or {}).items() if v}
    return f"{path}?{urlencode(extra, quote_via=quote)}" if extra else path


def badges(link: str, badge_url: str) -> tuple[str, str]:
    """The Markdown and HTML snippets of a badge that opens ``link``."""
    markdown = f"[![Launch on eohub]({badge_url})]({link})"
    html = (
        f'<a href="{html_escape(link)}"><img src="{html_escape(badge_url)}" '
        'alt="Launch on eohub"></a>'
    )
    return markdown, html


def clone_folder(spec: RepoSpec) -> str:
    """The workspace subfolder a local launch clones into: the repository's last part."""
    last = parse_url(spec.url).path.rstrip("/").rsplit("/", 1)[-1]
    name = _FOLDER.sub("-", last).strip(".-_")[:64]
    return name or "repository"


def repo_urlpath(base: str, folder: str, filepath: str | None) -> str:
    """The start page of a local repository launch: ``filepath`` in the clone.

    ``base`` is the environment's start page: JupyterLab (``/lab``) opens files at
    ``/lab/tree/<path>``, the classic interfaces at ``/tree/<path>``; other start
    pages (``/rstudio``...) are kept. An empty ``folder`` means the repository is the
    working directory, as in an image built by repo2docker.
    """
    path = "/".join(p for p in (folder, filepath) if p)
    if not path:
        return base
    stem = base.rstrip("/")
    if stem in ("", "/lab", "/lab/tree"):
        return f"/lab/tree/{quote(path)}"
    if stem in ("/tree", "/notebooks"):
        return f"/tree/{quote(path)}"
    return base


__all__ = [
    "BADGE_PATH",
    "LAUNCH_PREFIX",
    "RepoLaunch",
    "RepoRules",
    "badges",
    "check_repository",
    "clone_folder",
    "detect_provider",
    "launch_path",
    "repo_urlpath",
    "spec_from_request",
]
