"""Folder names made by KubeSpawner: the slugs of user names, back to the names.

On a Zero to JupyterHub hub whose homes share one NFS volume, each user's home is the
sub-path ``singleuser.storage.static.subPath`` (default ``{username}``), which
KubeSpawner fills with a slug of the user name: with its default ``slug_scheme =
"safe"``, ``alice`` stays ``alice`` but ``Alice.Smith@uni.ac.uk`` becomes
``alice-smith-uni-ac-uk---726d1a19``. The slug cannot be turned back into the name, so
the sampler lists the hub's users and computes each one's slug with the installed
KubeSpawner's own template expansion (the same code that names the sub-path).
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from types import SimpleNamespace

from kubespawner import KubeSpawner

#: The placeholders a folder template may use: the user-name slugs KubeSpawner offers.
SLUG_FIELDS = frozenset({"username", "safe_username", "escaped_username"})
SLUG_SCHEMES = ("safe", "escape")


def check_slug_template(template: str) -> str:
    """``template`` if it names a folder from the user name alone; ValueError if not."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise ValueError(f"{template!r} is not a valid template: {e}") from None
    if not fields or fields - SLUG_FIELDS:
        raise ValueError(
            f"{template!r} must use only "
            + ", ".join("{" + f + "}" for f in sorted(SLUG_FIELDS))
            + " (the folder name KubeSpawner makes from the user name)"
        )
    if "/" in template:
        raise ValueError(f"{template!r} names one folder: put the folders above it in the layout")
    return template


def kubespawner_slug(name: str, template: str = "{username}", scheme: str = "safe") -> str:
    """The folder name KubeSpawner makes of user ``name`` from ``template``.

    KubeSpawner's expansion reads only the user's name and its slug scheme for these
    placeholders, so a stand-in for the spawner is enough.
    """
    spawner = SimpleNamespace(
        user=SimpleNamespace(name=name, id=0),
        name="",
        slug_scheme=scheme,
        _namespace_default=lambda: "default",
    )
    return str(KubeSpawner._expand_user_properties(spawner, template, slug_scheme=scheme))


def slug_names(
    names: Iterable[str], template: str = "{username}", scheme: str = "safe"
) -> dict[str, str]:
    """Folder name -> user name for each of ``names``.

    Two names with one slug cannot happen with the ``safe`` scheme (it hashes whatever
    it changes); with ``escape`` the first name wins and the folder is not shared.
    """
    found: dict[str, str] = {}
    for name in sorted(names):
        found.setdefault(kubespawner_slug(name, template, scheme), name)
    return found


__all__ = ["SLUG_FIELDS", "SLUG_SCHEMES", "check_slug_template", "kubespawner_slug", "slug_names"]
