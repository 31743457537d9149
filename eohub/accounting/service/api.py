"""The REST API: events, quota checks, usage, sessions, groups and storage samples.

``openapi.yaml`` beside this module documents every route; the docs render it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from tornado import web

from eohub.accounting.service.handlers import APIHandler
from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.storage_history import (
    MAX_POINTS,
    Held,
    Holding,
    default_step,
    series_points,
    total_series,
)
from eohub.adapters.accounting_db.store import UnknownGroupError
from eohub.domain.accounting.access import Op, readable_groups
from eohub.domain.accounting.events import NAME, EventError, format_time
from eohub.domain.accounting.periods import PeriodKind, next_period_start, period_start
from eohub.domain.accounting.requests import (
    MAX_ID,
    choice_param,
    int_param,
    parse_group_update,
    parse_quota_request,
    parse_storage_samples,
    time_param,
)
from eohub.domain.accounting.session_record import SessionRecord
from eohub.logs import get_logger

log = get_logger(__name__)

MAX_PAGE = 500
#: The longest step of a storage series: ten years.
MAX_STEP_SECONDS = 10 * 366 * 86400


def session_json(s: SessionRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "user": s.user,
        "server": s.server,
        "group": s.group,
        "profile": s.profile,
        "profile_name": s.profile_name,
        "image": s.image,
        "cpu": s.resources.millicores / 1000,
        "memory_bytes": s.resources.memory_bytes,
        "gpus": s.resources.gpus,
        "started_at": format_time(s.started_at),
        "stopped_at": format_time(s.stopped_at) if s.stopped_at else None,
        "end_reason": s.end_reason,
        "stopped_by": s.stopped_by,
        "stop_reason": s.stop_reason,
        "idle_timeout": s.idle_timeout,
        "max_duration": s.max_duration,
        **s.usage(now).as_hours(),
    }


def group_json(g: GroupInfo) -> dict[str, Any]:
    return {
        "name": g.name,
        "display_name": g.display_name,
        "allocation": str(g.allocation),
        "pis": sorted(g.pis),
        "quotas": {owner: limits.to_json() for owner, limits in sorted(g.quotas.items())},
    }


class EventsHandler(APIHandler):
    async def post(self) -> None:
        self.authorise(Op.EVENTS)
        store = self.context.store
        # Reading and applying 5000 events takes seconds of CPU: the writer does both.
        started = time.perf_counter()
        result, count = await store.write(
            store.ingest_body, self.raw_body(), **self.context.clock_limits()
        )
        self.context.metrics.observe_ingest(count, time.perf_counter() - started)
        self.write_json(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "corrected": result.corrected,
            }
        )


class QuotaCheckHandler(APIHandler):
    async def post(self) -> None:
        self.authorise(Op.QUOTA_CHECK)
        request = parse_quota_request(self.json_body())
        decision = await self.context.store.quota_check(
            request.user, request.group, request.resources, self.context.storage
        )
        # The launch form's and home page's checks (purpose=form) start nothing: only a
        # spawn's denial is counted.
        if not decision.allowed and self.get_query_argument("purpose", "spawn") != "form":
            self.context.metrics.quota_denials.labels(group=request.group).inc()
        self.write_json(decision.to_json())


class StorageHandler(APIHandler):
    async def post(self) -> None:
        self.authorise(Op.STORAGE)
        samples = parse_storage_samples(self.json_body(), **self.context.clock_limits())
        store = self.context.store
        added = await store.write(store.add_storage_samples, samples)
        self.write_json({"accepted": added, "duplicates": len(samples) - added})


class QueryMixin(APIHandler):
    def name_argument(self, name: str) -> str | None:
        value = self.get_argument(name, None, strip=False)
        if value is not None and not NAME.fullmatch(value):
            raise EventError({name: "is not a valid name"})
        return value

    def time_argument(self, name: str, default: datetime) -> datetime:
        """A time (or a bare date: its midnight, UTC) in the years 2000 to 2200, or 400."""
        return time_param(name, self.get_argument(name, None), default)

    def int_argument(
        self, name: str, default: int | None, minimum: int, maximum: int
    ) -> int | None:
        """A whole number in ``[minimum, maximum]``, or 400: never an overflow in SQL."""
        return int_param(
            name, self.get_argument(name, None), default=default, minimum=minimum, maximum=maximum
        )

    def choice_argument(self, name: str, choices: tuple[str, ...], default: str) -> str:
        return choice_param(name, self.get_argument(name, None), choices, default)

    def period_range(self) -> tuple[PeriodKind, datetime, datetime]:
        kind = PeriodKind(
            self.choice_argument("period", tuple(k.value for k in PeriodKind), "month")
        )
        now = self.context.clock()
        this = period_start(kind, now)
        default_start = this
        for _ in range(11 if kind is PeriodKind.MONTH else 0):
            default_start = period_start(kind, default_start - timedelta(days=1))
        start = period_start(kind, self.time_argument("from", default_start))
        end = self.time_argument("to", next_period_start(kind, this))
        if end <= start:
            raise EventError({"to": "must be after from"})
        return kind, start, end


class StorageReadHandler(StorageHandler, QueryMixin):
    """``api/storage``: samples in (POST, :class:`StorageHandler`), storage over time out."""

    async def get(self) -> None:
        self.authorise(Op.STORAGE_READ)
        # As usage: a user's own by default, a PI their groups', readers everyone's.
        selection = self.select(
            Op.STORAGE_READ, user=self.name_argument("user"), group=self.name_argument("group")
        )
        now = self.context.clock()
        end = self.time_argument("end", period_start(PeriodKind.DAY, now) + timedelta(days=1))
        start = self.time_argument("start", end - timedelta(days=31))
        if end <= start:
            raise EventError({"end": "must be after start"})
        seconds = self.int_argument("step", None, 60, MAX_STEP_SECONDS)
        step = timedelta(seconds=seconds) if seconds else default_step(start, end)
        # The steps in the range, and "now" after the last of them, in MAX_POINTS points.
        if (end - start) / step >= MAX_POINTS - 1:
            raise EventError({"step": f"gives more than {MAX_POINTS} points; take a longer one"})
        by_user = self.choice_argument("by", ("group", "user"), "group") == "user"
        users = set(selection.users) if selection.users is not None else None
        groups = set(selection.groups) if selection.groups is not None else None
        points = series_points(start, end, step, now)
        store = self.context.store
        # Samples older than the store's max age stop counting, at each point, as in
        # quota checks.
        held = await store.read(store.storage_holdings, points, users, groups)
        latest = await store.read(store.latest_storage, users, groups)
        self.write_json(
            {
                "start": format_time(start),
                "end": format_time(end),
                "step": int(step.total_seconds()),
                **storage_json(points, held, latest, by_user=by_user),
            }
        )


def storage_json(
    points: list[datetime], held: Held, latest: list[Holding], *, by_user: bool
) -> dict[str, Any]:
    """The series of ``GET api/storage``: per group (or per user in each group), summed
    over the sources, the total, and each (user, group, source)'s latest sample that
    still counts; no group is ``null``."""
    series: dict[tuple[str | None, str], list[int]] = {}
    for (user, group, _source), values in sorted(held.items()):
        key = (user if by_user else None, group)
        found = series.get(key, [0] * len(points))
        series[key] = [a + b for a, b in zip(found, values, strict=True)]
    return {
        "points": [format_time(p) for p in points],
        "series": [
            {"user": user, "group": group or None, "bytes": values}
            for (user, group), values in series.items()
        ],
        "total": total_series(held.values(), len(points)),
        "latest": [
            {
                "user": h.user,
                "group": h.group or None,
                "source": h.source,
                "bytes": h.bytes,
                "file_count": h.file_count,
                "measured_at": format_time(h.measured_at),
            }
            for h in latest
        ],
    }


class UsageHandler(QueryMixin):
    async def get(self) -> None:
        self.authorise(Op.USAGE)
        kind, start, end = self.period_range()
        # A user sees their own usage by default; a PI exactly their groups' rows.
        selection = self.select(
            Op.USAGE, user=self.name_argument("user"), group=self.name_argument("group")
        )
        by_user = self.choice_argument("by", ("group", "user"), "group") == "user"
        user = selection.user
        groups = set(selection.groups) if selection.groups is not None else None
        store = self.context.store
        rows = await store.read(
            store.usage, kind, start, end, groups=groups, user=user, by_user=by_user
        )
        self.write_json(
            {
                "period": kind.value,
                "from": format_time(start),
                "to": format_time(end),
                "usage": [
                    {
                        "period_start": format_time(r.period_start),
                        "group": r.group,
                        "user": r.user or None,
                        **r.usage.as_hours(),
                    }
                    for r in rows
                ],
            }
        )


class SessionsHandler(QueryMixin):
    async def get(self) -> None:
        self.authorise(Op.SESSIONS)
        selection = self.select(
            Op.SESSIONS, user=self.name_argument("user"), group=self.name_argument("group")
        )
        limit = self.int_argument("limit", 100, 1, MAX_PAGE) or 100
        before_id = self.int_argument("before", None, 1, MAX_ID)
        open_only = self.choice_argument("open", ("true", "false"), "false") == "true"
        # The store ORs users and groups; ask by user when both are set, and keep only
        # the rows of the selection (the page may then be short; paging still works).
        users = set(selection.users) if selection.users is not None else None
        groups = set(selection.groups) if selection.groups is not None and not users else None
        store = self.context.store
        records = await store.read(
            store.sessions,
            users=users,
            groups=groups,
            open_only=open_only,
            before_id=before_id,
            limit=limit,
        )
        now = self.context.clock()
        shown = [s for s in records if selection.matches(s.user, s.group)]
        self.write_json(
            {
                "sessions": [session_json(s, now) for s in shown],
                "next_before": records[-1].id if len(records) == limit else None,
            }
        )


class GroupsHandler(APIHandler):
    async def get(self) -> None:
        self.authorise(Op.GROUPS)
        names = readable_groups(self.caller, Op.GROUPS)  # a PI's own; None: every group
        store = self.context.store
        groups = await store.read(store.groups, set(names) if names is not None else None)
        self.write_json({"groups": [group_json(g) for g in groups]})


class GroupHandler(APIHandler):
    async def get(self, name: str) -> None:
        if not NAME.fullmatch(name):
            raise EventError({"name": "is not a valid group name"})
        self.select(Op.GROUP, group=name)
        try:
            found = await self.context.store.read(self.context.store.group, name)
            self.write_json(group_json(found))
        except UnknownGroupError:
            raise web.HTTPError(404, f"No group {name!r}.") from None

    async def put(self, name: str) -> None:
        self.authorise(Op.CHANGE_GROUP)
        assert self.caller is not None
        if not NAME.fullmatch(name):
            raise EventError({"name": "is not a valid group name"})
        update = parse_group_update(self.json_body())
        store = self.context.store
        created = await store.write(
            store.put_group,
            name,
            display_name=update.display_name,
            allocation=update.allocation,
            pis=update.pis,
            quotas=update.quotas,
        )
        log.info(
            "Group {group} {change} by {caller}",
            group=name,
            change="created" if created else "changed",
            caller=self.caller.name,
        )
        changed = await store.read(store.group, name)
        self.write_json(group_json(changed), 201 if created else 200)


class WhoAmIHandler(APIHandler):
    async def get(self) -> None:
        self.authorise(Op.WHOAMI)
        caller = self.caller
        assert caller is not None
        self.write_json(
            {
                "name": caller.name,
                "kind": caller.kind,
                "admin": caller.is_admin,
                "reads_all": caller.reads_all,
                "pi_of": sorted(caller.groups_led),
            }
        )


def api_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    return [
        (prefix + "api/events", EventsHandler),
        (prefix + "api/quota/check", QuotaCheckHandler),
        (prefix + "api/storage", StorageReadHandler),
        (prefix + "api/usage", UsageHandler),
        (prefix + "api/sessions", SessionsHandler),
        (prefix + "api/groups", GroupsHandler),
        (prefix + r"api/groups/([^/]+)", GroupHandler),
        (prefix + "api/me", WhoAmIHandler),
    ]
