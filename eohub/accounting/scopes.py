"""The accounting service's JupyterHub custom scopes, and who may read what.

- ``custom:eohub-accounting:ingest``: post start/stop events and storage samples, ask
  quota checks. Only the hub's own client token should hold it.
- ``custom:eohub-accounting:read``: read every user's and group's usage (report tools).
- ``custom:eohub-accounting:admin``: read everything and change groups, PIs, allocations
  and quotas. JupyterHub admins have these rights too, unless
  ``AccountingService.hub_admins_are_admins`` is turned off.

Any other hub user reads their own usage, and the usage of groups whose PI they are.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_NAME = "eohub-accounting"
PREFIX = f"custom:{SERVICE_NAME}:"
INGEST = PREFIX + "ingest"
READ = PREFIX + "read"
ADMIN = PREFIX + "admin"

CUSTOM_SCOPES: dict[str, dict[str, str | list[str]]] = {
    INGEST: {
        "description": "Post server start/stop events and storage samples to eohub "
        "accounting, and ask it for quota checks."
    },
    READ: {"description": "Read every user's and group's usage in eohub accounting."},
    ADMIN: {
        "description": "Read all usage in eohub accounting and change its groups, PIs, "
        "allocations and quotas.",
        "subscopes": [READ],
    },
}


@dataclass(frozen=True)
class Caller:
    """Who is calling, as JupyterHub identified their token or cookie."""

    name: str
    kind: str  # "user" or "service"
    scopes: frozenset[str]
    pi_of: frozenset[str] = frozenset()
    hub_admin: bool = False  # a JupyterHub admin, trusted as an accounting admin

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes or self.hub_admin

    @property
    def reads_all(self) -> bool:
        return self.is_admin or READ in self.scopes

    @property
    def may_ingest(self) -> bool:
        return INGEST in self.scopes

    def may_read_user(self, user: str) -> bool:
        return self.reads_all or (self.kind == "user" and user == self.name)

    def may_read_group(self, group: str) -> bool:
        return self.reads_all or group in self.pi_of

    def readable_groups(self) -> set[str] | None:
        """Groups whose whole usage the caller may read; None means every group."""
        return None if self.reads_all else set(self.pi_of)
