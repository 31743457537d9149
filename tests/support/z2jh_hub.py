"""A real JupyterHub configured the way Zero to JupyterHub's hub pod is, for tests.

The chart's values are mapped onto the hub's config by
:func:`tests.support.z2jh.hub_config_from_values` *inside the hub process*, from its
config file, as the chart's ``jupyterhub_config.py`` does; the harness's own settings
(loopback ports, the proxy, the database, the test service) come first, as in any test
hub. The accounting service runs as its own process with the environment the kit's
Deployment gives it (``deploy/z2jh/accounting/deployment.yaml``), the way the kit
runs it beside the chart, not as a service the hub manages.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .hub import Hub, start_hub
from .process import ServiceProcess, port_open, start_process
from .tools import REPO_ROOT
from .z2jh import hub_environment

ACCOUNTING = "eohub-accounting"

#: The test hub's config after the harness's: the chart's config, merged in. The
#: chart assigns ``services`` and ``load_roles``, which would drop what the harness
#: appended (its test service and that service's role), so those are appended again.
CHART_CONFIG = """
import json as _json
import sys as _sys

_sys.path.insert(0, {root!r})
from tests.support.z2jh import CHART_DEFAULTS as _DEFAULTS
from tests.support.z2jh import hub_config_from_values as _from_values

with open({state!r}) as _f:
    _state = _json.load(_f)
_harness = {{k: c.JupyterHub[k] for k in ("services", "load_roles")}}
c.merge(
    _from_values(
        _state["values"], _DEFAULTS, secret=_state["secret"], files=_state["files"]
    )
)
for _key, _added in _harness.items():
    c.JupyterHub[_key] = _added.get_value(c.JupyterHub[_key])
"""


def start_chart_hub(
    workdir: Path,
    values: Mapping[str, Any],
    secret: Mapping[str, str],
    files: Mapping[str, str],
    *,
    port: int,
    env: Mapping[str, str],
) -> Hub:
    """Start a hub whose config is the chart's for ``values`` (merged over the chart's
    defaults in the hub), its environment ``hub.extraEnv`` plus ``env``."""
    workdir.mkdir(parents=True, exist_ok=True)
    state = workdir / "chart-state.json"
    state.write_text(
        json.dumps({"values": values, "secret": dict(secret), "files": dict(files)}, indent=1)
    )
    config = CHART_CONFIG.format(root=str(REPO_ROOT), state=str(state))
    return start_hub(
        workdir,
        config,
        load_dropins=False,  # the chart runs hub.extraFiles' drop-ins itself
        port=port,
        env={**hub_environment(values, secret), **env},
    )


def start_accounting(
    workdir: Path, *, url: str, hub_url: str, token: str, config: str
) -> ServiceProcess:
    """The accounting service as the kit's Deployment runs it: listening on ``url``,
    with the chart's token for it, its config file, and SQLite in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "eohub_accounting_config.py").write_text(config)
    prefix = f"/services/{ACCOUNTING}/"
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "EOHUB_"))
    }
    env = inherited | {
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_API_URL": f"{hub_url}/hub/api",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_NAME": ACCOUNTING,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_CLIENT_ID": f"service-{ACCOUNTING}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "EOHUB_ACCOUNTING_CONFIG": str(workdir / "eohub_accounting_config.py"),
        "EOHUB_ACCOUNTING_DB_URL": f"sqlite:///{workdir / 'accounting.sqlite'}",
    }
    process = start_process(
        ACCOUNTING,
        [sys.executable, "-m", "eohub.accounting", f"--url={url}"],
        log_path=workdir / "accounting.log",
        env=env,
        cwd=workdir,
    )
    host, _, port = url.removeprefix("http://").partition(":")
    process.wait_until(lambda: port_open(host, int(port)), timeout=60, what="listening")
    return process
