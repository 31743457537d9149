# eohub drop-in 30: the accounting service, its scopes and roles, and the hub's client.
#
# Registers `eohub-accounting` as a managed JupyterHub service (JupyterHub starts and
# stops it) listening on $EOHUB_ACCOUNTING_URL (default http://127.0.0.1:10101), with its
# SQLite database in the hub's working directory unless $EOHUB_ACCOUNTING_DB_URL names
# another, and its config from $EOHUB_ACCOUNTING_CONFIG (default eohub_accounting_config.py
# in that directory). To run the service yourself (external service), drop "command" from the entry
# and start `eohub-accounting` with the same URL and a JUPYTERHUB_API_TOKEN.
import os
import secrets
import sys
from pathlib import Path

import jupyterhub
from traitlets.config import LazyConfigValue

from eohub.accounting.scopes import (
    ACCESS,
    ADMIN,
    CUSTOM_SCOPES,
    INGEST,
    READ,
    SERVICE_NAME,
    admins_role,
)
from eohub.hub import use_eohub_templates
from eohub.spawner.accounting import start_with_the_hub, stop_servers_before_services

# The Zero to JupyterHub chart runs drop-ins in its own config file's globals, where `c`
# is already set and `get_config` is the chart's z2jh.get_config(key).
c = globals().get("c") or get_config()

accounting_url = os.environ.get("EOHUB_ACCOUNTING_URL", "http://127.0.0.1:10101").rstrip("/")


def _hub_client_token() -> str:
    """The token the hub's accounting client uses: from the environment, else a file
    created once (mode 0600) beside the hub's database, so restarts keep it."""
    if os.environ.get("EOHUB_ACCOUNTING_HUB_TOKEN"):
        return os.environ["EOHUB_ACCOUNTING_HUB_TOKEN"]
    path = Path("eohub-accounting-hub.token")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


c.JupyterHub.custom_scopes.update(CUSTOM_SCOPES)

service_environment = {
    key: os.environ[key]
    for key in (
        "EOHUB_ACCOUNTING_DB_URL",
        "EOHUB_ACCOUNTING_CONFIG",
        "EOHUB_ACCOUNTING_COOKIE_SECRET",
    )
    if key in os.environ
}
c.JupyterHub.services.extend(
    [
        {
            "name": SERVICE_NAME,
            "display": True,
            "info": {
                # The name in the hub's Services menu (eohub's page.html shows it).
                "display_name": "Usage",
                "description": "Your compute usage, your groups' budgets, and reports.",
            },
            "url": accounting_url,
            "command": [sys.executable, "-m", "eohub.accounting"],
            "environment": service_environment,
            # The pages' OAuth tokens carry these scopes when the user holds them (besides
            # the access scope); the service authorises by the token's scopes alone.
            "oauth_client_allowed_scopes": [ADMIN, READ],
            # The hub's own service: logging in to its pages asks no confirmation
            # (JupyterHub logs at start-up that it allows this).
            "oauth_no_confirm": True,
        },
        # The hub's own client (eohub.accounting.client.client): posts events, asks quota checks.
        {"name": "eohub-accounting-hub", "api_token": _hub_client_token()},
    ]
)

c.JupyterHub.load_roles.extend(
    [
        {
            "name": "eohub-accounting-hub-client",
            "description": "The hub posts server starts and stops and asks quota checks.",
            "scopes": [INGEST, ACCESS],
            "services": ["eohub-accounting-hub"],
        },
        {
            "name": "eohub-accounting-service",
            "description": "The accounting service lists running servers (reconcile) and "
            "stops servers of groups whose budget is spent (enforcement).",
            "scopes": ["list:users", "read:users:name", "read:servers", "servers"],
            "services": [SERVICE_NAME],
        },
    ]
)

# The service trusts only the scopes a token carries, never the hub's admin flag. This
# role gives the hub's admins the accounting admin scope: the users in
# c.Authenticator.admin_users, and the hub groups in the authenticator's admin_groups
# (eohub's authenticators keep them as hub groups), read when the hub starts, whatever
# file sets them. Their API tokens and the pages' OAuth tokens then carry the scope;
# narrowed tokens (a single-user server's) do not. To let others (a finance office)
# manage groups and quotas, or only read everything, give them a role of your own:
#   c.JupyterHub.load_roles.append({"name": "accountants", "scopes": [ADMIN, ACCESS],
#                                   "groups": ["finance"]})
#   c.JupyterHub.load_roles.append({"name": "usage-readers", "scopes": [READ, ACCESS],
#                                   "services": ["report-tool"]})
c.JupyterHub.load_roles.append(admins_role())


def _roles_so_far() -> list[dict[str, object]]:
    """The ``load_roles`` entries set so far with this ``c`` (this file's among them).

    The list holds them once a file assigned it; until then traitlets keeps what files
    appended or prepended in a lazy value, which holds the same dicts.
    """
    roles = c.JupyterHub.load_roles
    if not isinstance(roles, LazyConfigValue):
        return list(roles)
    pending = roles.to_dict()
    inserted = [role for _, role in pending.get("inserts", [])]
    return [*pending.get("prepend", []), *inserted, *pending.get("extend", [])]


def _grant_every_user(scopes: list[str]) -> None:
    """Add ``scopes`` to JupyterHub's ``user`` role, which every user holds.

    JupyterHub 6 has ``extra_user_scopes`` for this. JupyterHub 5 (the Zero to
    JupyterHub 4.x chart's) ignores that setting with a warning, so there the scopes go
    into a ``user`` entry in ``load_roles``: the one set before this file with the same
    ``c`` (the chart's ``hub.config``), else a new one with JupyterHub's default scope
    ``self``. JupyterHub 5 refuses two ``user`` entries, so a site's own ``user`` role
    must come before this file, not after (docs/how-to/drop-in-config.md).
    """
    if jupyterhub.version_info >= (6,):
        c.JupyterHub.extra_user_scopes.update(scopes)
        return
    for role in _roles_so_far():
        if role.get("name") == "user":
            # An entry without scopes keeps the default role's (JupyterHub merges them).
            held = list(role.get("scopes", ["self"]))
            role["scopes"] = held + [scope for scope in scopes if scope not in held]
            return
    c.JupyterHub.load_roles.append({"name": "user", "scopes": ["self", *scopes]})


# Every user may open the service's pages and read their own usage.
_grant_every_user([ACCESS])

c.AccountingClient.url = f"{accounting_url}/services/{SERVICE_NAME}/"
c.AccountingClient.api_token = _hub_client_token()

# The hub's pages, as eohub extends them: the Services menu says "Usage".
use_eohub_templates(c)

# Send what the last run of the hub left in its accounting outbox as soon as it starts.
start_with_the_hub()

# On Ctrl-C or SIGTERM, stop the users' servers (where c.JupyterHub.cleanup_servers is
# on, the default) and deliver their stops before the hub stops this service; JupyterHub
# alone would stop the service first, and the stops would wait for the next start.
stop_servers_before_services()
