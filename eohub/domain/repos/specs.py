"""Git repositories a user may launch: spec parsing, refs and the admin's policy.

A repository launch names a provider, a repository and a ref, either in a launch link
(``<provider>/<spec>``, in BinderHub's spec formats) or in three form fields. Both end
up as one :class:`RepoSpec` through :class:`RepoProviders`; every way in is checked here,
before anything touches the network or starts ``git``:

* parsing (:meth:`RepoProviders.parse_link`, :meth:`RepoProviders.from_fields`) is
  syntax: only ``https``/``http`` URLs, no ``file://``, no ``<transport>::`` forms, no
  user-info, no control characters or whitespace, no ``..`` and no part starting with
  ``-`` (the CVE-2021-39159 pattern: an argument that ``git`` would read as an option);
  refs follow ``git check-ref-format`` (:func:`ref_problem`);
* policy (:mod:`eohub.domain.repos.policy`) is the admin's allow and deny lists, the
  ``http`` switch and the SSRF guard.

Image names (BinderHub's naming convention) live in :mod:`eohub.domain.repos.images`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from eohub.domain.fields import FieldErrors, describe

MAX_REF = 255
MAX_URL = 2048
#: A full commit id, as ``git ls-remote`` prints it (BinderHub's ``SHA1_PATTERN``).
COMMIT = re.compile(r"[0-9a-f]{40}")
SCHEMES = ("https", "http")
# git check-ref-format, rule 4, 5 and 10: characters a ref name never holds.
_REF_FORBIDDEN = set("~^:?*[\\")
_TRANSPORT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)")
_GITHUB_OWNER = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,38})")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9._-]{1,100}")
_GITLAB_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


class RepoError(FieldErrors):
    """A repository, ref or policy that cannot be used; ``field`` names what is wrong.

    Like a bad launch option (:class:`~eohub.domain.launch.options.OptionsError`), it is
    a :class:`~eohub.domain.fields.FieldErrors`, so the hub answers it with the same 400
    and field errors.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__({field: message})

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (RepoError, (self.field, self.errors[self.field]))


def unquote_all(text: str) -> str:
    """``text`` percent-decoded until nothing changes, so double encoding is seen too."""
    while (decoded := unquote(text)) != text:
        text = decoded
    return text


def has_hidden_characters(text: str) -> bool:
    """Whether ``text`` has a control character or whitespace, also percent-encoded."""
    return any(
        c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
        for c in text + unquote_all(text)
    )


def has_lookalikes(text: str) -> bool:
    """Whether ``text`` has a character that stands for others (a fullwidth slash...).

    That is: it changes under Unicode NFKC normalization, also percent-decoded.
    """
    return any(unicodedata.normalize("NFKC", t) != t for t in (text, unquote_all(text)))


def is_commit(ref: str) -> bool:
    """Whether ``ref`` is a full, lowercase 40-hex commit id."""
    return COMMIT.fullmatch(ref) is not None


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a branch, tag or commit name; None if it is.

    These are the rules of ``git check-ref-format --allow-onelevel`` (so ``main`` and
    ``HEAD`` pass), plus: no leading ``-`` (git would read it as an option), no
    whitespace at all, and at most :data:`MAX_REF` characters.
    """
    if not ref:
        return "must not be empty"
    if len(ref) > MAX_REF:
        return f"must be at most {MAX_REF} characters"
    if ref.startswith("-"):
        return "must not start with '-'"
    if has_hidden_characters(ref):
        return "must not contain spaces or control characters"
    bad = sorted(_REF_FORBIDDEN.intersection(ref))
    if bad:
        return f"must not contain {' '.join(repr(c) for c in bad)}"
    if ".." in ref:
        return "must not contain '..'"
    if "@{" in ref:
        return "must not contain '@{'"
    if ref == "@":
        return "must not be '@'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "must not start or end with '/' or contain '//'"
    if ref.endswith("."):
        return "must not end with '.'"
    for part in ref.split("/"):
        if part.startswith("."):
            return "no '/'-separated part may start with '.'"
        if part.endswith(".lock"):
            return "no '/'-separated part may end with '.lock'"
    if has_lookalikes(ref):
        return "must not contain look-alike characters, such as a fullwidth slash"
    # A ref that a server, a builder or a later link decodes must be safe decoded too.
    decoded = unquote_all(ref)
    problem = ref_problem(decoded) if decoded != ref else None
    return f"decodes to {describe(decoded)}, which {problem}" if problem else None


def _ref(value: str) -> str:
    problem = ref_problem(value)
    if problem:
        raise RepoError("ref", f"{describe(value)} {problem}")
    return value


def host_problem(host: str) -> str | None:
    """Why ``host`` (lowercase, IPv6 without brackets) cannot be a git server's host."""
    if ":" in host or _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return "must be a host name or an IP address in its usual form"
        return None
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(p) for p in host.split(".")):
        return "must be a host name of ASCII letters, digits, '-' and '.'"
    return None


@dataclass(frozen=True)
class RepoUrl:
    """A checked ``http(s)`` repository URL, split into the parts policy looks at."""

    url: str
    scheme: str
    host: str  # lowercase; an IPv6 address without brackets
    path: str  # without the leading '/' and a trailing '.git'


def parse_url(url: str, field: str = "repo") -> RepoUrl:
    """Check a repository URL, or raise :class:`RepoError` on ``field`` saying why."""

    def fail(message: str) -> RepoError:
        return RepoError(field, f"{describe(url)} {message}")

    if len(url) > MAX_URL:
        raise RepoError(field, f"must be at most {MAX_URL} characters")
    if url.startswith("-"):
        raise fail("must not start with '-'")
    if _TRANSPORT.match(url):
        raise fail("uses a '<transport>::' form; only https:// URLs are accepted")
    scheme = url.split(":", 1)[0].lower() if "://" in url else ""
    if scheme == "file":
        raise fail("is a local path (file://); only https:// URLs are accepted")
    if has_hidden_characters(url):
        raise fail("must not contain spaces or control characters")
    if scheme not in SCHEMES:
        raise fail("must be an https:// URL")
    if "\\" in unquote_all(url):
        raise fail("must not contain '\\'")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise fail("is not a valid URL (host or port)") from None
    if "[" in parts.netloc and ":" not in host:
        raise fail("has a bracketed host that is not an IPv6 address")
    if "@" in parts.netloc:
        raise fail("must not contain a user name or password")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise fail("must not have a query or a fragment")
    if "%" in parts.netloc:
        raise fail("must not have a percent-encoded host or an IPv6 zone")
    problem = host_problem(host)
    if problem:
        raise fail(f"has a host that {problem}")
    if port == 0:
        raise fail("must have a port from 1 to 65535")
    path = parts.path.strip("/")
    segments = unquote_all(path).split("/")
    if not path or "//" in parts.path:
        raise fail("must name a repository path, without empty parts")
    if has_lookalikes(path):
        raise fail("must not contain look-alike characters, such as a fullwidth slash")
    if any(s in (".", "..") for s in segments):
        raise fail("must not contain '.' or '..' path parts")
    if any(s.startswith("-") for s in segments):
        raise fail("must not have a path part starting with '-'")
    return RepoUrl(url=url, scheme=scheme, host=host, path=path.removesuffix(".git"))


@dataclass(frozen=True)
class RepoSpec:
    """A well-formed repository launch: not yet allowed, ref not yet resolved.

    Attributes
    ----------
    provider
        The provider's key in :class:`RepoProviders` (``gh``, ``gl``, ``git``...).
    url
        What ``git ls-remote`` and the builder clone: a checked ``http(s)`` URL.
    repo
        The repository as the provider names it: ``owner/name`` on GitHub, the
        namespace path on GitLab, the URL itself for plain git.
    ref
        A branch, a tag or a commit (:func:`ref_problem`, :func:`is_commit`).
    """

    provider: str
    url: str
    repo: str
    ref: str

    @property
    def name(self) -> str:
        """``host/path`` (lowercase, no scheme, no ``.git``): what policy patterns match.

        The path is percent-decoded as a server reads it, so ``b%61nned/x`` is
        ``banned/x`` to a deny list.
        """
        host = parse_url(self.url).host
        path = unquote_all(urlsplit(self.url).path).strip("/").removesuffix(".git")
        return f"{host}/{path}".lower()


class RepoProvider:
    """How one provider reads and writes its specs; subclass it to plug in another.

    ``fixed_host`` is True when the host comes from the admin's config (GitHub, GitLab),
    not from the user: then its name needs no resolution check (:class:`RepoCheck`).
    """

    display_name = "Git repository"
    fixed_host = False

    def split_spec(self, spec: str) -> tuple[str, str]:
        """``(repo, ref)`` from a link spec, as BinderHub writes it for this provider."""
        escaped, sep, ref = spec.partition("/")
        if not sep or not ref:
            raise RepoError("spec", "must be '<url-escaped repository>/<ref>'")
        return unquote(escaped), unquote(ref)

    def join_spec(self, repo: str, ref: str) -> str:
        """The link spec for ``repo`` and ``ref``: the inverse of :meth:`split_spec`."""
        return f"{quote(repo, safe='')}/{quote(ref, safe='')}"

    def canonical(self, repo: str) -> str:
        """``repo`` as the spec stores it (GitHub drops a ``.git`` suffix)."""
        return repo

    def url(self, repo: str) -> str:
        """The clone URL of ``repo``; raise :class:`RepoError` if ``repo`` is malformed."""
        return _lower_scheme(parse_url(repo))

    def build_slug(self, repo: str) -> str:
        """BinderHub's ``get_build_slug()`` for this provider: the image name's seed."""
        return repo


def _lower_scheme(parsed: RepoUrl) -> str:
    # git finds its transport by the scheme as written: 'HTTPS://' is no transport.
    return parsed.scheme + parsed.url[len(parsed.scheme) :]


def _base_url(value: str) -> str:
    parsed = parse_url(value.rstrip("/") + "/x", field="base_url")
    return _lower_scheme(parsed)[: -len("/x")]


@dataclass(frozen=True)
class GitProvider(RepoProvider):
    """Any ``http(s)`` git URL; spec ``<url-escaped URL>/<url-escaped ref>`` (``git``)."""


@dataclass(frozen=True)
class GitHubProvider(RepoProvider):
    """GitHub or GitHub Enterprise at ``base_url``; spec ``<owner>/<repo>/<ref>`` (``gh``).

    As in BinderHub, the ref is the rest of the spec and may hold ``/``; a ``.git``
    suffix on the repository is dropped.
    """

    base_url: str = "https://github.com"
    display_name = "GitHub"
    fixed_host = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _base_url(self.base_url))

    def split_spec(self, spec: str) -> tuple[str, str]:
        parts = spec.split("/", 2)
        if len(parts) != 3 or not parts[2]:
            raise RepoError("spec", "must be '<owner>/<repo>/<ref>'")
        return f"{parts[0]}/{parts[1]}", unquote(parts[2])

    def join_spec(self, repo: str, ref: str) -> str:
        # '/' stays readable; '#', '?', '%' and non-ASCII would not survive a URL.
        return f"{repo}/{quote(ref, safe='/')}"

    def canonical(self, repo: str) -> str:
        return repo.removesuffix(".git")

    def url(self, repo: str) -> str:
        owner, _, name = repo.partition("/")
        name = name.removesuffix(".git")
        if not _GITHUB_OWNER.fullmatch(owner):
            raise RepoError("repo", f"{describe(repo)} must be '<owner>/<repo>' on GitHub")
        if not _GITHUB_REPO.fullmatch(name) or name.startswith(("-", ".")):
            raise RepoError("repo", f"{describe(repo)} has an invalid repository name")
        return f"{self.base_url}/{owner}/{name}"

    def build_slug(self, repo: str) -> str:
        owner, _, name = repo.partition("/")
        return f"{owner}-{name.removesuffix('.git')}"


@dataclass(frozen=True)
class GitLabProvider(RepoProvider):
    """GitLab at ``base_url``; spec ``<url-escaped namespace/project>/<ref>`` (``gl``)."""

    base_url: str = "https://gitlab.com"
    display_name = "GitLab"
    fixed_host = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _base_url(self.base_url))

    def url(self, repo: str) -> str:
        parts = repo.split("/")
        if len(parts) < 2 or not all(_GITLAB_PART.fullmatch(p) for p in parts):
            raise RepoError("repo", f"{describe(repo)} must be '<namespace>/<project>' on GitLab")
        if any(".." in p for p in parts):
            raise RepoError("repo", f"{describe(repo)} must not contain '..'")
        return f"{self.base_url}/{repo}.git"

    def build_slug(self, repo: str) -> str:
        return "-".join(p.replace("-", "_-") for p in repo.split("/"))


@dataclass(frozen=True)
class RepoProviders:
    """The providers a hub offers, by key; the one way to a :class:`RepoSpec`."""

    providers: Mapping[str, RepoProvider] = field(hash=False)

    @classmethod
    def default(
        cls,
        github_url: str = "https://github.com",
        gitlab_url: str = "https://gitlab.com",
        extra: Mapping[str, RepoProvider] | None = None,
    ) -> RepoProviders:
        """``gh``, ``gl`` and ``git``, plus any ``extra`` providers."""
        providers: dict[str, RepoProvider] = {
            "gh": GitHubProvider(github_url),
            "gl": GitLabProvider(gitlab_url),
            "git": GitProvider(),
        }
        return cls({**providers, **(extra or {})})

    def get(self, key: str) -> RepoProvider:
        provider = self.providers.get(key)
        if provider is None:
            known = ", ".join(self.providers)
            raise RepoError("provider", f"{describe(key)} is not a provider; use {known}")
        return provider

    def _spec(self, key: str, provider: RepoProvider, repo: str, ref: str) -> RepoSpec:
        repo = provider.canonical(repo)
        url = provider.url(repo)  # the provider's own, specific message comes first
        # A backstop for plugged-in providers: nothing git could read as an option.
        if has_hidden_characters(repo + url) or any(
            p.startswith("-") for p in (repo + "/" + url).split("/")
        ):
            raise RepoError(
                "repo",
                f"{describe(repo)} must not contain spaces, control characters "
                "or a part starting with '-'",
            )
        parse_url(url)  # and every provider's URL passes the checks a user's URL does
        return RepoSpec(provider=key, url=url, repo=repo, ref=_ref(ref))

    def parse_link(self, path: str) -> RepoSpec:
        """A spec from a launch link's ``<provider>/<spec>``, still percent-encoded."""
        key, _, spec = path.strip("/").partition("/")
        provider = self.get(key)
        repo, ref = provider.split_spec(spec)
        return self._spec(key, provider, repo, ref)

    def from_fields(self, provider: str, repo: str, ref: str = "HEAD") -> RepoSpec:
        """A spec from the form's fields; an empty ``ref`` means ``HEAD``."""
        chosen = self.get(provider)
        return self._spec(provider, chosen, repo.strip(), ref or "HEAD")

    def link(self, spec: RepoSpec) -> str:
        """The ``<provider>/<spec>`` part of a launch link for ``spec``."""
        return f"{spec.provider}/{self.get(spec.provider).join_spec(spec.repo, spec.ref)}"

    def build_slug(self, spec: RepoSpec) -> str:
        return self.get(spec.provider).build_slug(spec.repo)


__all__ = [
    "COMMIT",
    "MAX_REF",
    "MAX_URL",
    "SCHEMES",
    "GitHubProvider",
    "GitLabProvider",
    "GitProvider",
    "RepoError",
    "RepoProvider",
    "RepoProviders",
    "RepoSpec",
    "RepoUrl",
    "has_hidden_characters",
    "has_lookalikes",
    "host_problem",
    "is_commit",
    "parse_url",
    "ref_problem",
    "unquote_all",
]
