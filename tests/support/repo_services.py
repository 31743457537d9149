"""Helpers for repository-launch tests: a BinderHub stand-in naming images as BinderHub does.

:class:`tests.support.binderhub_standin.BinderHubStandIn` names every image after its
fixed ``COMMIT``, which suits tests of the build client. A launch test needs the image
BinderHub would really push for the request: :class:`NamingBinderHub` derives it from
the spec it is asked to build, as BinderHub's ``GitRepoProvider`` does (the build slug
is the unescaped repository URL, and a ref that is a full commit is used as it is).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import unquote

from eohub.domain.repo_images import image_name
from tests.support.binderhub_standin import BinderHubStandIn


class NamingBinderHub(BinderHubStandIn):
    """The stand-in, with BinderHub's image name for ``git`` specs pinned to a commit."""

    def image_for(self, provider: str, spec: str) -> str:
        if provider != "git":
            return super().image_for(provider, spec)
        # GitRepoProvider: url, ref = spec.split("/", 1); get_build_slug() is the URL
        escaped_url, _, ref = spec.partition("/")
        return image_name(self.prefix, unquote(escaped_url), unquote(ref))


def head_of(clone: Path) -> str:
    """The commit checked out in the clone at ``clone``."""
    return subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


__all__ = ["NamingBinderHub", "head_of"]
