"""The user profile both authenticators store in ``auth_state``, in one shape.

Later components (the spawner, the accounting service) read ``auth_state["eohub"]``
through :meth:`UserProfile.from_auth_state` and never care whether LDAP or OIDC filled
it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AUTH_STATE_KEY = "eohub"


@dataclass(frozen=True)
class UserProfile:
    """What eohub knows about a logged-in user."""

    username: str
    source: str  # "ldap" or "oidc"
    display_name: str = ""
    email: str = ""
    uid_number: int | None = None
    gid_number: int | None = None
    home_directory: str = ""
    groups: frozenset[str] = frozenset()
    pi_of: frozenset[str] = frozenset()
    group_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def git_name(self) -> str:
        return self.display_name or self.username

    @property
    def git_email(self) -> str:
        return self.email

    def to_auth_state(self) -> dict[str, Any]:
        """A JSON-safe dict for ``auth_state[AUTH_STATE_KEY]``."""
        return {
            "username": self.username,
            "source": self.source,
            "display_name": self.display_name,
            "email": self.email,
            "uid_number": self.uid_number,
            "gid_number": self.gid_number,
            "home_directory": self.home_directory,
            "groups": sorted(self.groups),
            "pi_of": sorted(self.pi_of),
            "group_roles": {g: sorted(r) for g, r in sorted(self.group_roles.items())},
            "git": {"name": self.git_name, "email": self.git_email},
        }

    @classmethod
    def from_auth_state(cls, auth_state: Mapping[str, Any] | None) -> UserProfile | None:
        """The profile stored by an eohub authenticator, or None if there is none."""
        data = (auth_state or {}).get(AUTH_STATE_KEY)
        if not isinstance(data, Mapping):
            return None
        return cls(
            username=str(data["username"]),
            source=str(data.get("source", "")),
            display_name=str(data.get("display_name") or ""),
            email=str(data.get("email") or ""),
            uid_number=data.get("uid_number"),
            gid_number=data.get("gid_number"),
            home_directory=str(data.get("home_directory") or ""),
            groups=frozenset(data.get("groups") or ()),
            pi_of=frozenset(data.get("pi_of") or ()),
            group_roles={g: frozenset(r) for g, r in (data.get("group_roles") or {}).items()},
        )
