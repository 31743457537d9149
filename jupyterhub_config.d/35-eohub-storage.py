# eohub drop-in 35: the storage sampler, as a managed service, when $EOHUB_STORAGE_SAMPLER
# is set (`local` on one machine; `filesystem` or `kubernetes` where the hub runs beside
# the data). Without it this file does nothing.
#
# Registers `eohub-storage-sampler` (JupyterHub starts and stops it), which measures
# storage every hour and posts it to the accounting service of drop-in 30
# ($EOHUB_ACCOUNTING_URL), with a role granting what it needs: the accounting ingest
# scope and access to the service, `read:users:groups` when $EOHUB_STORAGE_HUB_GROUPS
# is set (users are then charged to their hub group), and `list:users` with
# `read:users:name` when $EOHUB_STORAGE_FOLDER_NAMES=kubespawner-slug (the folders are
# named by KubeSpawner's slugs of the user names, as Zero to JupyterHub's NFS homes
# are). Its own settings go in the Python file $EOHUB_STORAGE_CONFIG (default
# eohub_storage_config.py in the hub's directory).
#
# With `local`, the sampler walks the QuotaLocalSpawner workspaces: the `workspace`
# volumes' local_path of c.QuotaLocalSpawner.launch_volumes or launch_config_file, when a
# file before this one (20-29) sets them; otherwise set
# c.LocalWorkspaceSampler.workspace_paths (or launch_config_file) in $EOHUB_STORAGE_CONFIG.
import contextlib
import os
import sys

from traitlets.config import Config

from eohub.accounting.scopes import ACCESS, INGEST
from eohub.storage.app import SAMPLERS
from eohub.storage.local import workspace_templates

c = globals().get("c") or get_config()


def _storage_sampler_args(kind: str, config: Config) -> list[str]:
    """The sampler's command-line settings that come from the hub's own config."""
    args = [f"--sampler={kind}"]
    if os.environ.get("EOHUB_STORAGE_HUB_GROUPS"):
        args.append("--Sampler.hub_groups=True")
    if _storage_folder_names:
        args.append(f"--DirectorySampler.folder_names={_storage_folder_names}")
    if kind != "local":
        return args
    spawner = config.QuotaLocalSpawner
    volumes = spawner.get("launch_volumes")
    if isinstance(volumes, dict) and volumes:
        # A bad volume is the spawner's start-up check to report, not this file's.
        with contextlib.suppress(ValueError):
            args += [
                f"--LocalWorkspaceSampler.workspace_paths={t}"
                for t in workspace_templates(volumes)
            ]
    config_file = spawner.get("launch_config_file")
    if isinstance(config_file, str) and config_file:
        args.append(f"--LocalWorkspaceSampler.launch_config_file={os.path.abspath(config_file)}")
    return args


_storage_kind = os.environ.get("EOHUB_STORAGE_SAMPLER", "").strip().lower()
if _storage_kind and _storage_kind not in SAMPLERS:
    raise ValueError(
        f"EOHUB_STORAGE_SAMPLER={_storage_kind!r}: use one of {', '.join(SAMPLERS)}, or unset it"
    )
_storage_folder_names = os.environ.get("EOHUB_STORAGE_FOLDER_NAMES", "").strip().lower()
if _storage_folder_names not in ("", "user", "kubespawner-slug"):
    raise ValueError(
        f"EOHUB_STORAGE_FOLDER_NAMES={_storage_folder_names!r}: use user or kubespawner-slug, "
        "or unset it"
    )
if _storage_kind:
    _storage_env = {
        "EOHUB_ACCOUNTING_URL": os.environ.get("EOHUB_ACCOUNTING_URL", "http://127.0.0.1:10101"),
        **{k: os.environ[k] for k in ("EOHUB_STORAGE_CONFIG",) if k in os.environ},
    }
    c.JupyterHub.services.append(
        {
            "name": "eohub-storage-sampler",
            "command": [
                sys.executable,
                "-m",
                "eohub.storage",
                *_storage_sampler_args(_storage_kind, c),
            ],
            "environment": _storage_env,
        }
    )
    c.JupyterHub.load_roles.append(
        {
            "name": "eohub-storage-sampler",
            "description": "The storage sampler posts storage samples to the accounting service.",
            "scopes": [INGEST, ACCESS]
            + (["read:users:groups"] if os.environ.get("EOHUB_STORAGE_HUB_GROUPS") else [])
            + (
                ["list:users", "read:users:name"]
                if _storage_folder_names == "kubespawner-slug"
                else []
            ),
            "services": ["eohub-storage-sampler"],
        }
    )
