"""The REST API: events, quota checks, usage, sessions, groups and storage samples.

``openapi.yaml`` beside this module documents every route; the docs render it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from tornado import web

from eohub.accounting.handlers_base import APIHandler
from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.store import UnknownGroupError
from eohub.domain.accounting_events import NAME, EventError, format_time, parse_batch, parse_time
from eohub.domain.accounting_requests import (
    parse_group_update,
    parse_quota_request,
    parse_storage_samples,
)
from eohub.domain.periods import PeriodKind, next_period_start, period_start
from eohub.domain.session_record import SessionRecord

MAX_PAGE = 500
INGEST_ONLY = (
    "Only the hub's accounting client (scope custom:eohub-accounting:ingest) may do this."
)


def session_json(s: SessionRecord, now: datetime) -> dict[str, Any]:
    return {
        "id": s.id,
        "user": s.user,
        "server": s.server,
        "group": s.group,
        "profile": s.profile,
        "image": s.image,
        "cpu": s.resources.millicores / 1000,
        "memory_bytes": s.resources.memory_bytes,
        "gpus": s.resources.gpus,
        "started_at": format_time(s.started_at),
        "stopped_at": format_time(s.stopped_at) if s.stopped_at else None,
        "end_reason": s.end_reason,
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
        assert self.caller is not None
        self.require(self.caller.may_ingest, INGEST_ONLY)
        data = self.json_body()
        events = parse_batch(data)
        started = time.perf_counter()
        result = self.service.store.ingest(
            events, single=not (isinstance(data, dict) and "events" in data)
        )
        self.service.metrics.observe_ingest(len(events), time.perf_counter() - started)
        self.write_json(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "corrected": result.corrected,
            }
        )


class QuotaCheckHandler(APIHandler):
    async def post(self) -> None:
        assert self.caller is not None
        self.require(self.caller.may_ingest, INGEST_ONLY)
        request = parse_quota_request(self.json_body())
        decision = self.service.store.check_quota(request.user, request.group, request.resources)
        if not decision.allowed:
            self.service.metrics.quota_denials.labels(group=request.group).inc()
        self.write_json(decision.to_json())


class StorageHandler(APIHandler):
    async def post(self) -> None:
        assert self.caller is not None
        self.require(self.caller.may_ingest, INGEST_ONLY)
        samples = parse_storage_samples(self.json_body())
        added = self.service.store.add_storage_samples(samples)
        self.write_json({"accepted": added, "duplicates": len(samples) - added})


class QueryMixin(APIHandler):
    def name_argument(self, name: str) -> str | None:
        value = self.get_argument(name, None)
        if value is not None and not NAME.fullmatch(value):
            raise EventError({name: "is not a valid name"})
        return value

    def time_argument(self, name: str, default: datetime) -> datetime:
        value = self.get_argument(name, None)
        if value is None:
            return default
        if len(value) == 10:  # a bare date means its midnight, UTC
            value += "T00:00:00Z"
        try:
            return parse_time(value)
        except ValueError as e:
            raise EventError({name: str(e)}) from None

    def period_range(self) -> tuple[PeriodKind, datetime, datetime]:
        try:
            kind = PeriodKind(self.get_argument("period", "month"))
        except ValueError:
            raise EventError({"period": "must be day, month, quarter or year"}) from None
        now = self.service.store.clock()
        this = period_start(kind, now)
        default_start = this
        for _ in range(11 if kind is PeriodKind.MONTH else 0):
            default_start = period_start(kind, default_start - timedelta(days=1))
        start = period_start(kind, self.time_argument("from", default_start))
        end = self.time_argument("to", next_period_start(kind, this))
        if end <= start:
            raise EventError({"to": "must be after from"})
        return kind, start, end


class UsageHandler(QueryMixin):
    async def get(self) -> None:
        caller = self.caller
        assert caller is not None
        kind, start, end = self.period_range()
        user = self.name_argument("user")
        group = self.name_argument("group")
        by_user = self.get_argument("by", "group") == "user"
        if user is None and group is None and not caller.reads_all:
            user = caller.name  # what a user sees by default: their own usage
        if user is not None:
            self.require(
                caller.may_read_user(user) or (group is not None and caller.may_read_group(group)),
                "You may read only your own usage, and that of groups you are PI of.",
            )
        if group is not None:
            self.require(
                caller.may_read_group(group) or user == caller.name,
                f"You are not a PI of {group!r}.",
            )
        groups = {group} if group is not None else None
        if groups is None and user is None:
            groups = caller.readable_groups()
        rows = self.service.store.usage(
            kind, start, end, groups=groups, user=user, by_user=by_user
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
        caller = self.caller
        assert caller is not None
        user = self.name_argument("user")
        group = self.name_argument("group")
        try:
            limit = min(int(self.get_argument("limit", "100")), MAX_PAGE)
            before = self.get_argument("before", None)
            before_id = int(before) if before is not None else None
        except ValueError:
            raise EventError({"limit": "limit and before must be whole numbers"}) from None
        if limit < 1:
            raise EventError({"limit": "must be at least 1"})
        users = {user} if user is not None else None
        groups = {group} if group is not None else None
        if user is not None:
            self.require(caller.may_read_user(user), "You may list only your own sessions.")
        elif group is not None:
            self.require(caller.may_read_group(group), f"You are not a PI of {group!r}.")
        elif not caller.reads_all:
            users = {caller.name}
        records = self.service.store.sessions(
            users=users,
            groups=groups,
            open_only=self.get_argument("open", "") == "true",
            before_id=before_id,
            limit=limit,
        )
        now = self.service.store.clock()
        self.write_json(
            {
                "sessions": [session_json(s, now) for s in records],
                "next_before": records[-1].id if len(records) == limit else None,
            }
        )


class GroupsHandler(APIHandler):
    async def get(self) -> None:
        caller = self.caller
        assert caller is not None
        names = caller.readable_groups()
        groups = self.service.store.groups(names)
        self.write_json({"groups": [group_json(g) for g in groups]})


class GroupHandler(APIHandler):
    async def get(self, name: str) -> None:
        assert self.caller is not None
        self.require(self.caller.may_read_group(name), f"You are not a PI of {name!r}.")
        try:
            self.write_json(group_json(self.service.store.group(name)))
        except UnknownGroupError:
            raise web.HTTPError(404, f"No group {name!r}.") from None

    async def put(self, name: str) -> None:
        assert self.caller is not None
        self.require(self.caller.is_admin, "Only accounting admins may change groups.")
        if not NAME.fullmatch(name):
            raise EventError({"name": "is not a valid group name"})
        update = parse_group_update(self.json_body())
        created = self.service.store.put_group(
            name,
            display_name=update.display_name,
            allocation=update.allocation,
            pis=update.pis,
            quotas=update.quotas,
        )
        self.service.log.info(
            "Group %s %s by %s", name, "created" if created else "changed", self.caller.name
        )
        self.write_json(group_json(self.service.store.group(name)), 201 if created else 200)


class WhoAmIHandler(APIHandler):
    async def get(self) -> None:
        caller = self.caller
        assert caller is not None
        self.write_json(
            {
                "name": caller.name,
                "kind": caller.kind,
                "admin": caller.is_admin,
                "reads_all": caller.reads_all,
                "pi_of": sorted(caller.pi_of),
            }
        )


def api_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    return [
        (prefix + "api/events", EventsHandler),
        (prefix + "api/quota/check", QuotaCheckHandler),
        (prefix + "api/storage", StorageHandler),
        (prefix + "api/usage", UsageHandler),
        (prefix + "api/sessions", SessionsHandler),
        (prefix + "api/groups", GroupsHandler),
        (prefix + r"api/groups/([^/]+)", GroupHandler),
        (prefix + "api/me", WhoAmIHandler),
    ]
