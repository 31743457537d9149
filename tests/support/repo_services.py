"""Helpers for repository-launch tests: a BinderHub stand-in naming images as BinderHub does.

:class:`tests.support.binderhub_standin.BinderHubStandIn` names every image after its
fixed ``COMMIT``, which suits tests of the build client. A launch test needs the image
BinderHub would really push for the request: :class:`NamingBinderHub` derives it from
the spec it is asked to build, as BinderHub's ``GitRepoProvider`` does (the build slug
is the unescaped repository URL, and a ref that is a full commit is used as it is).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from eohub.domain.repos.images import image_name
from tests.support.binderhub_standin import BinderHubStandIn
from tests.support.hub import Hub, start_hub


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


def local_repo_hub_config(
    workdir: Path,
    *,
    environments: Mapping[str, Any],
    sizes: Mapping[str, Any],
    groups: Mapping[str, list[str]],
    repo_settings: str = "",
) -> str:
    """A QuotaLocalSpawner hub (dummy login, servers as the hub's user) that launches
    repositories over loopback git, with launch links; ``repo_settings`` adds lines."""
    volumes = {
        "home": {
            "kind": "workspace",
            "mount_path": "/home/jovyan",
            "local_path": str(workdir / "home" / "{username}"),
        }
    }
    load_groups = {name: {"users": users} for name, users in groups.items()}
    return f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_sizes = {dict(sizes)!r}
c.QuotaLocalSpawner.launch_environments = {dict(environments)!r}
c.QuotaLocalSpawner.launch_volumes = {volumes!r}
c.QuotaLocalSpawner.charge_groups = {sorted(groups)!r}
c.JupyterHub.load_groups = {load_groups!r}
c.RepoLaunches.allow_http = True
c.RepoLaunches.allow_private_hosts = True
{repo_settings}
from eohub.spawner.form.launch_link import launch_link_handlers
c.JupyterHub.extra_handlers = launch_link_handlers()
from eohub.spawner import check_hub_config
check_hub_config(c)
"""


def start_repo_hub(workdir: Path, config: str, accounting_groups: Mapping[str, Any]) -> Hub:
    """Start the hub with the accounting service's groups; wait until it answers."""
    from tests.accounting.service_support import Accounting

    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {dict(accounting_groups)!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    hub = start_hub(workdir, config)
    Accounting(hub).wait_ready(timeout=60)
    return hub


__all__ = ["NamingBinderHub", "head_of", "local_repo_hub_config", "start_repo_hub"]
