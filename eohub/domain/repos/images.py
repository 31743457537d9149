"""The image a repository launch runs: a deterministic name, in BinderHub's convention.

The name depends only on the image prefix, the provider's build slug (BinderHub's
``RepoProvider.get_build_slug()``, see :meth:`eohub.domain.repos.specs.RepoProvider.build_slug`)
and the resolved commit, so a registry lookup, a build request and the server-side
check before a pod starts all agree on it, and images built by a BinderHub with the
same prefix are found in the cache. The user never supplies an image name.

Reference: ``binderhub/builder.py`` in jupyterhub/binderhub, ``BuildHandler.get``
(``image_name = '{prefix}{build_slug}:{ref}'.replace('_', '-').lower()``) and
``_safe_build_slug``; the escaping is ``escapism.escape(s, safe=ascii letters and
digits, escape_char='-')`` (minrk/escapism), re-implemented here with the stdlib.
"""

from __future__ import annotations

import hashlib
import re
import string

from eohub.domain.repos.specs import RepoError, RepoProviders, RepoSpec, is_commit

#: The longest image name (repository part) BinderHub produces, prefix included.
MAX_IMAGE_NAME = 255
_SAFE = frozenset(string.ascii_letters + string.digits)
# A registry host and path ending where the slug starts: "registry.example.org/binder/r2d-".
PREFIX = re.compile(r"([a-z0-9][a-z0-9.-]*(:[0-9]{1,5})?/)?([a-z0-9][a-z0-9._/-]*)?")
# An image repository name by the distribution reference grammar: an optional registry
# host, then '/'-separated components of [a-z0-9] joined by '.', '_', '__' or dashes.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_IMAGE_NAME = re.compile(
    rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
)


def escape(text: str, escape_char: str = "-") -> str:
    """``escapism.escape(text, safe=letters+digits, escape_char=escape_char)``.

    Every character outside ``[A-Za-z0-9]`` becomes, for each of its UTF-8 bytes,
    ``escape_char`` followed by the byte in uppercase hex without padding (``-2D`` for
    ``-``, ``-A`` for a newline), exactly as escapism writes it.
    """
    return "".join(
        c if c in _SAFE else "".join(f"{escape_char}{b:X}" for b in c.encode("utf-8"))
        for c in text
    )


def safe_build_slug(build_slug: str, limit: int, hash_length: int = 6) -> str:
    """BinderHub's ``_safe_build_slug``: escaped, cut to fit ``limit``, hash-suffixed.

    The suffix is the first ``hash_length`` hex digits of the SHA-256 of the *unescaped*
    slug, so two slugs that truncate alike still differ.
    """
    digest = hashlib.sha256(build_slug.encode("utf-8")).hexdigest()
    return f"{escape(build_slug)[: limit - hash_length - 1]}-{digest[:hash_length]}".lower()


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot start an image name; None if it can (``""`` can)."""
    if len(prefix) > MAX_IMAGE_NAME - 8:
        return f"must be at most {MAX_IMAGE_NAME - 8} characters"
    if not PREFIX.fullmatch(prefix) or not _IMAGE_NAME.fullmatch((prefix + "x").replace("_", "-")):
        return "must be a lowercase registry path such as 'registry.example.org/binder/r2d-'"
    return None


def image_name(prefix: str, build_slug: str, commit: str) -> str:
    """``<prefix><safe slug>:<commit>`` as BinderHub names the image it builds.

    One departure from BinderHub: where the slug starts a name component (an empty
    prefix, or one ending in ``/`` or ``.``), its leading dashes are dropped, because
    BinderHub's name would not be a valid image reference there.
    """
    problem = prefix_problem(prefix)
    if problem:
        raise RepoError("image_prefix", problem)
    if not is_commit(commit):
        raise RepoError("commit", "must be a full 40-hex commit id")
    slug = safe_build_slug(build_slug, limit=MAX_IMAGE_NAME - len(prefix))
    if not prefix or prefix.endswith(("/", ".")):
        # A name component starts with a letter or digit, but an escaped slug may start
        # with '-' ('_group/x' on GitLab is '-5fgroup-2dx'): drop it, the hash stays.
        slug = slug.lstrip("-")
    return f"{prefix}{slug}:{commit}".replace("_", "-").lower()


def repo_image_name(providers: RepoProviders, spec: RepoSpec, commit: str, prefix: str) -> str:
    """The image for ``spec`` at its resolved ``commit``."""
    return image_name(prefix, providers.build_slug(spec), commit)


__all__ = [
    "MAX_IMAGE_NAME",
    "PREFIX",
    "escape",
    "image_name",
    "prefix_problem",
    "repo_image_name",
    "safe_build_slug",
]
