"""Who may do what in the accounting service: the one authorisation table.

Every request is judged by the scopes its JupyterHub token (or the pages' OAuth cookie)
actually carries, never by the caller's name alone or the hub's ``admin`` flag:

1. The token must carry the service's access scope (``access:services!service=
   eohub-accounting``, or ``access:services``). JupyterHub gives it to every user through
   ``extra_user_scopes`` in drop-in 30, and puts it in the pages' OAuth tokens; a narrowed
   token (a single-user server's, or one with only ``read:users:activity``) lacks it
   and gets 403 everywhere.
2. The operation's row in :data:`TABLE` lists its grants, widest first. A grant names the
   scope it needs (``None``: the access scope is enough), the caller kinds it applies to,
   and its :class:`Reach`: which rows the caller may then see.
3. :func:`select` narrows a query to those rows: a PI sees exactly their groups, whatever
   the query parameters ask for. Only users are ever PIs or "self": a service named like
   a user reads nothing of that user's.

``custom:eohub-accounting:admin`` includes ``...:read`` (JupyterHub expands the custom
scope's subscopes; :meth:`Caller.holds` does the same for tokens that list only one).
The reference docs render :func:`table_markdown`; a test checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SERVICE_NAME = "eohub-accounting"
PREFIX = f"custom:{SERVICE_NAME}:"
INGEST = PREFIX + "ingest"
READ = PREFIX + "read"
ADMIN = PREFIX + "admin"
#: The scope JupyterHub requires to reach the service; ``access:services`` covers it.
ACCESS = f"access:services!service={SERVICE_NAME}"
ACCESS_SCOPES = frozenset({ACCESS, "access:services"})
#: Scopes that holding one of these implies (the custom scopes' ``subscopes``).
IMPLIED = {ADMIN: frozenset({READ})}


class Kind(StrEnum):
    USER = "user"
    SERVICE = "service"


class Reach(StrEnum):
    """Which rows a grant lets the caller see."""

    ALL = "all"  # every user's and group's
    OWN = "own"  # the caller's own, and those of the groups they are PI of
    PI = "pi"  # those of the groups they are PI of
    SELF = "self"  # who they are; no usage


class Op(StrEnum):
    """Every operation of the service, named as the docs' table shows it."""

    EVENTS = "POST api/events"
    QUOTA_CHECK = "POST api/quota/check"
    STORAGE = "POST api/storage"
    USAGE = "GET api/usage"
    STORAGE_READ = "GET api/storage"
    SESSIONS = "GET api/sessions"
    GROUPS = "GET api/groups"
    GROUP = "GET api/groups/{name}"
    CHANGE_GROUP = "PUT api/groups/{name}"
    EXPORT_SESSIONS = "GET api/export/sessions.csv"
    EXPORT_USAGE = "GET api/export/usage.csv"
    EXPORT_SACCT = "GET api/export/sacct.txt"
    EXPORT_STORAGE = "GET api/export/storage.json"
    METRICS = "GET metrics"
    WHOAMI = "GET api/me"
    PAGE_USAGE = "GET usage (page)"
    PAGE_GROUPS = "GET groups (page)"
    PAGE_ALL = "GET all (page)"
    STOP_SERVER = "POST groups/stop (page)"


#: The export operation of each export file name.
EXPORT_OPS = {
    "sessions.csv": Op.EXPORT_SESSIONS,
    "usage.csv": Op.EXPORT_USAGE,
    "sacct.txt": Op.EXPORT_SACCT,
    "storage.json": Op.EXPORT_STORAGE,
}

ANY = frozenset(Kind)
USERS = frozenset({Kind.USER})


@dataclass(frozen=True)
class Grant:
    """One way to be allowed an operation."""

    scope: str | None  # the scope needed besides the access scope; None: none
    kinds: frozenset[Kind]
    reach: Reach


def _reads(*, own: Reach = Reach.OWN) -> tuple[Grant, ...]:
    return (Grant(READ, ANY, Reach.ALL), Grant(None, USERS, own))


TABLE: dict[Op, tuple[Grant, ...]] = {
    Op.EVENTS: (Grant(INGEST, ANY, Reach.ALL),),
    Op.QUOTA_CHECK: (Grant(INGEST, ANY, Reach.ALL),),
    Op.STORAGE: (Grant(INGEST, ANY, Reach.ALL),),
    Op.USAGE: _reads(),
    # Storage over time is read as usage is: a user's own, a PI's groups, readers all.
    Op.STORAGE_READ: _reads(),
    # The hub's client reads sessions back: its home page says why a server stopped.
    Op.SESSIONS: (*_reads(), Grant(INGEST, ANY, Reach.ALL)),
    Op.GROUPS: _reads(own=Reach.PI),
    Op.GROUP: _reads(own=Reach.PI),
    Op.CHANGE_GROUP: (Grant(ADMIN, ANY, Reach.ALL),),
    Op.EXPORT_SESSIONS: _reads(own=Reach.PI),
    Op.EXPORT_USAGE: _reads(own=Reach.PI),
    Op.EXPORT_SACCT: _reads(own=Reach.PI),
    Op.EXPORT_STORAGE: _reads(own=Reach.PI),
    Op.METRICS: (Grant(READ, ANY, Reach.ALL),),
    Op.WHOAMI: (Grant(None, ANY, Reach.SELF),),
    Op.PAGE_USAGE: (Grant(None, USERS, Reach.OWN),),
    Op.PAGE_GROUPS: _reads(own=Reach.PI),
    Op.PAGE_ALL: (Grant(READ, ANY, Reach.ALL),),
    # Stopping changes things: reading everything is not enough, only the admin scope.
    Op.STOP_SERVER: (Grant(ADMIN, ANY, Reach.ALL), Grant(None, USERS, Reach.PI)),
}


class Forbidden(Exception):
    """The caller may not do this; the message says why (HTTP 403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Caller:
    """Who is calling, as JupyterHub identified their token or cookie.

    ``scopes`` are the token's own scopes (JupyterHub's ``/api/user`` answer for it);
    ``pi_of`` the groups the accounting store lists the user as PI of (always empty
    for services); ``groups`` the hub groups the user is a member of (the model's
    ``groups``), which the usage page shows the budgets of.
    """

    name: str
    kind: Kind
    scopes: frozenset[str]
    pi_of: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def holds(self, scope: str) -> bool:
        return scope in self.scopes or any(
            scope in IMPLIED.get(held, frozenset()) for held in self.scopes
        )

    @property
    def has_access(self) -> bool:
        return bool(self.scopes & ACCESS_SCOPES)

    @property
    def is_admin(self) -> bool:
        return self.has_access and self.holds(ADMIN)

    @property
    def reads_all(self) -> bool:
        return self.has_access and self.holds(READ)

    @property
    def groups_led(self) -> frozenset[str]:
        """The groups this caller is PI of: a service never is."""
        return self.pi_of if self.kind == Kind.USER else frozenset()


def grant_for(caller: Caller | None, op: Op) -> Grant | None:
    """The widest grant of ``op`` that ``caller`` holds, or None."""
    if caller is None or not caller.has_access:
        return None
    for grant in TABLE[op]:
        if caller.kind in grant.kinds and (grant.scope is None or caller.holds(grant.scope)):
            return grant
    return None


def authorise(caller: Caller | None, op: Op) -> Grant:
    """The grant that lets ``caller`` do ``op``; :class:`Forbidden` with the reason if none."""
    grant = grant_for(caller, op)
    if grant is not None:
        return grant
    if caller is None:
        raise Forbidden("A JupyterHub token is required (Authorization: token ...).")
    if not caller.has_access:
        raise Forbidden(f"The token does not carry the scope {ACCESS}.")
    needed = sorted({g.scope for g in TABLE[op] if g.scope is not None})
    if any(g.scope is None for g in TABLE[op]):
        raise Forbidden(f"Only users may do this, or holders of {' or '.join(needed)}.")
    raise Forbidden(f"This needs a token with {' or '.join(needed)}.")


@dataclass(frozen=True)
class Selection:
    """The rows a query may return: both conditions hold; None means any."""

    users: frozenset[str] | None = None
    groups: frozenset[str] | None = None

    def matches(self, user: str, group: str) -> bool:
        return (self.users is None or user in self.users) and (
            self.groups is None or group in self.groups
        )

    @property
    def user(self) -> str | None:
        """The one user asked for, if the selection names exactly one."""
        return next(iter(self.users)) if self.users is not None and len(self.users) == 1 else None


def select(
    caller: Caller | None, op: Op, *, user: str | None = None, group: str | None = None
) -> Selection:
    """Narrow a query for ``user`` and/or ``group`` to what ``caller`` may see.

    Without ``user`` or ``group``, a reader of everything gets everything, a user their
    own rows (:attr:`Reach.OWN`) or their groups' (:attr:`Reach.PI`). Asking for rows the
    caller may not see is :class:`Forbidden`; a PI asking for one member gets that
    member's rows in the PI's groups only.
    """
    grant = authorise(caller, op)
    assert caller is not None
    users = frozenset({user}) if user is not None else None
    groups = frozenset({group}) if group is not None else None
    led = caller.groups_led
    if grant.reach is Reach.ALL:
        return Selection(users, groups)
    if (
        group is not None
        and group not in led
        and not (grant.reach is Reach.OWN and user == caller.name)
    ):
        raise Forbidden(f"You are not a PI of {group!r}.")
    if grant.reach is Reach.OWN:
        if user is None and group is None:
            return Selection(frozenset({caller.name}), None)
        if user is None or user == caller.name or group is not None:
            return Selection(users, groups)
        if not led:
            raise Forbidden("You may read only your own usage, and that of groups you are PI of.")
        return Selection(users, led)  # one member's rows, in the caller's groups only
    if grant.reach is Reach.PI:
        if group is not None:
            return Selection(users, groups)
        if not led:
            raise Forbidden("You are not a PI of any group.")
        return Selection(users, led)
    raise Forbidden("This operation reads no usage.")


def readable_groups(caller: Caller | None, op: Op) -> frozenset[str] | None:
    """The groups whose rows ``caller`` may read through ``op``; None means every group."""
    grant = authorise(caller, op)
    assert caller is not None
    if grant.reach is Reach.ALL:
        return None
    return caller.groups_led if grant.reach in (Reach.OWN, Reach.PI) else frozenset()


def may_read_group(caller: Caller | None, op: Op, group: str) -> bool:
    try:
        groups = readable_groups(caller, op)
    except Forbidden:
        return False
    return groups is None or group in groups


def may_stop_some_server(caller: Caller | None) -> bool:
    """Whether the caller may stop any server at all: leads a group, or is an admin.

    Asked before a session is looked up, so that nobody else learns which exist.
    """
    return caller is not None and (caller.is_admin or bool(caller.groups_led))


def may_stop_server(caller: Caller | None, group: str) -> bool:
    """Whether ``caller`` may stop a server charged to ``group``: its PI, or an admin."""
    return may_read_group(caller, Op.STOP_SERVER, group)


# -- the table, as the reference docs show it ----------------------------------------
REACH_TEXT = {
    Reach.ALL: "everything",
    Reach.OWN: "their own rows, and their groups' rows if PI",
    Reach.PI: "the groups they are PI of",
    Reach.SELF: "who they are",
}


def _grant_text(grant: Grant) -> str:
    who = "users" if grant.kinds == USERS else "users and services"
    scope = f"`{grant.scope}`" if grant.scope else "no other scope"
    return f"{who} with {scope}: {REACH_TEXT[grant.reach]}"


def table_markdown() -> str:
    """The authorisation table as a Markdown table (rendered into the reference docs).

    ``custom:eohub-accounting:admin`` includes ``...:read`` wherever the table says read.
    """
    lines = [
        "| operation | allowed (besides the access scope), and what they see |",
        "|-----------|--------------------------------------------------------|",
    ]
    for op, grants in TABLE.items():
        lines.append(f"| `{op.value}` | {'; '.join(_grant_text(g) for g in grants)} |")
    return "\n".join(lines) + "\n"
