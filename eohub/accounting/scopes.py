"""The accounting service's JupyterHub custom scopes, as drop-in 30 registers them.

- ``custom:eohub-accounting:ingest``: post start/stop events and storage samples, ask
  quota checks. Only the hub's own client token should hold it.
- ``custom:eohub-accounting:read``: read every user's and group's usage (report tools).
- ``custom:eohub-accounting:admin``: read everything and change groups, PIs, allocations
  and quotas. Drop-in 30 grants it to the hub's admins through the role
  ``eohub-accounting-admins``; being a JupyterHub admin grants nothing by itself.

Who may do what with which scope is the table in :mod:`eohub.domain.accounting.access`,
re-exported here for the service's handlers and the drop-in.
"""

from __future__ import annotations

import logging
import re

from eohub.domain.accounting.access import (
    ACCESS,
    ACCESS_SCOPES,
    ADMIN,
    INGEST,
    PREFIX,
    READ,
    SERVICE_NAME,
    Caller,
    Kind,
)

#: The role drop-in 30 defines to make the hub's admins accounting admins.
ADMINS_ROLE = "eohub-accounting-admins"


class HubAdmins(list[str]):
    """A role's ``users`` (or ``groups``) list that is read when the hub assigns roles.

    Drop-in 30 loads before a site's own settings (``Authenticator.admin_users``, the
    authenticator's ``admin_groups``), so it cannot copy them when it runs. JupyterHub
    iterates a role's member lists once the authenticator is configured, at start-up;
    this list yields the admins then. ``groups=True`` yields the authenticator's
    ``admin_groups`` (eohub's authenticators keep them as hub groups, so members gain
    and lose the role with the group).
    """

    def __init__(self, *, groups: bool = False) -> None:
        super().__init__()
        self.groups = groups

    def _names(self) -> list[str]:
        from jupyterhub.app import JupyterHub

        if not JupyterHub.initialized():
            return []
        authenticator = getattr(JupyterHub.instance(), "authenticator", None)
        if authenticator is None or getattr(authenticator, "manage_roles", False):
            # An authenticator that manages roles owns every assignment: JupyterHub
            # refuses load_roles members then. Grant the scope through its roles.
            return []
        names = getattr(authenticator, "admin_groups" if self.groups else "admin_users", ())
        return sorted(names or ())

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __bool__(self) -> bool:
        # JupyterHub assigns members when the key is present, whatever its value; it
        # refuses a non-empty list when the authenticator manages roles.
        return bool(self._names())

    def __deepcopy__(self, memo: dict[int, object]) -> HubAdmins:
        # traitlets deep-copies config values; the copy must stay lazy.
        return HubAdmins(groups=self.groups)

    def __repr__(self) -> str:
        return f"HubAdmins(groups={self.groups})"


def admins_role() -> dict[str, object]:
    """Drop-in 30's role: the hub's admins hold the accounting admin scope."""
    return {
        "name": ADMINS_ROLE,
        "description": "The hub's admins manage eohub accounting (groups, PIs, quotas) "
        "and read all its usage.",
        "scopes": [ADMIN, ACCESS],
        "users": HubAdmins(),
        "groups": HubAdmins(groups=True),
    }


CUSTOM_SCOPES: dict[str, dict[str, str | list[str]]] = {
    INGEST: {
        "description": "Post server start/stop events and storage samples to eohub "
        "accounting, ask it for quota checks, and read sessions back (the hub's home page "
        "shows why servers stopped)."
    },
    READ: {"description": "Read every user's and group's usage in eohub accounting."},
    ADMIN: {
        "description": "Read all usage in eohub accounting and change its groups, PIs, "
        "allocations and quotas.",
        "subscopes": [READ],
    },
}

#: The scopes the service's login asks for, which only some users hold.
LOGIN_SCOPES = frozenset({ADMIN, READ})

# JupyterHub's warning when an OAuth login grants fewer scopes than the client asked for
# (apihandlers/auth.py, the same text in JupyterHub 5 and 6).
_FEWER_SCOPES = re.compile(
    r"Service (?P<client>.*) requested scopes (?P<requested>\S*) for user .*,"
    r" granting only (?P<granted>\S*)\.",
    re.DOTALL,
)


class ServiceLoginScopes(logging.Filter):
    """Drop the hub's warning that a login to the service got fewer scopes than asked.

    The service's OAuth login asks for no scope in particular, so the hub offers its
    ``oauth_client_allowed_scopes`` (:data:`LOGIN_SCOPES`) and grants each user those
    they hold: admins and readers get theirs, everyone else the access scope alone.
    That is the design, yet the hub warns at every login of a user without them; the
    service cannot ask for less, since it does not know the user before the login.
    Only warnings about this service whose missing scopes are all in
    :data:`LOGIN_SCOPES` are dropped; any other is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not isinstance(record.msg, str):
            return True
        if "granting only" not in record.msg:
            return True
        found = _FEWER_SCOPES.match(record.getMessage())
        if found is None or not found["client"].endswith(f"service {SERVICE_NAME}"):
            return True
        missing = set(found["requested"].split(",")) - set(found["granted"].split(","))
        return not missing <= LOGIN_SCOPES


def quiet_service_logins(logger: logging.Logger) -> None:
    """Put :class:`ServiceLoginScopes` on ``logger``'s handlers (the hub's), once each."""
    for handler in logger.handlers:
        if not any(isinstance(f, ServiceLoginScopes) for f in handler.filters):
            handler.addFilter(ServiceLoginScopes())


__all__ = [
    "ACCESS",
    "ACCESS_SCOPES",
    "ADMIN",
    "ADMINS_ROLE",
    "CUSTOM_SCOPES",
    "INGEST",
    "LOGIN_SCOPES",
    "PREFIX",
    "READ",
    "SERVICE_NAME",
    "Caller",
    "HubAdmins",
    "Kind",
    "ServiceLoginScopes",
    "admins_role",
    "quiet_service_logins",
]
