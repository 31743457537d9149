"""What the service's replies mean to the hub's client: a batch's fate, a quota answer."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.accounting.client.http import Reply
from eohub.accounting.client.replies import QuotaAnswer, delivery, quota_answer
from eohub.accounting.client.sender import Delivery

URL_HINT = "not an answer of the accounting service: check c.AccountingClient.url"

# (reply, what becomes of the batch)
DELIVERIES = [
    (
        Reply(500, {"message": "boom"}),
        Delivery("retry", problem="the accounting service answered HTTP 500 (failing)"),
    ),
    (
        Reply(503, None),
        Delivery(
            "retry", problem="the accounting service answered HTTP 503 (database unavailable)"
        ),
    ),
    (
        Reply(599, None),  # no HTTP answer, as curl reports it
        Delivery("retry", problem="the accounting service answered HTTP 599 (failing)"),
    ),
    (
        Reply(302, None),  # not a 4xx: no verdict
        Delivery("retry", problem="the accounting service answered HTTP 302 (failing)"),
    ),
    # The service's field errors name the events.
    (
        Reply(400, {"errors": {"events[1].cpu": "must be greater than 0"}, "message": "x"}),
        Delivery("rejected", errors={"events[1].cpu": "must be greater than 0"}),
    ),
    (
        Reply(422, {"errors": {"events": "not a list"}}),
        Delivery("rejected", errors={"events": "not a list"}),
    ),
    # A 400 without field errors judges the batch as a whole.
    (
        Reply(400, {"message": "Bad request"}),
        Delivery(
            "refused",
            errors={"status": "400", "message": "Bad request"},
            problem="the accounting service answered HTTP 400: Bad request",
        ),
    ),
    (
        Reply(400, {"message": "Bad request", "errors": {}}),
        Delivery(
            "refused",
            errors={"status": "400", "message": "Bad request"},
            problem="the accounting service answered HTTP 400: Bad request",
        ),
    ),
    # Too large: halves, then one event.
    (
        Reply(413, {"message": "Too large"}),
        Delivery("rejected", errors={"status": "413", "message": "Too large"}),
    ),
    (
        Reply(404, {"message": "Not Found"}),
        Delivery(
            "refused",
            errors={"status": "404", "message": "Not Found"},
            problem="the accounting service answered HTTP 404: Not Found",
        ),
    ),
    # Field errors of another status are not the service's verdict on events.
    (
        Reply(409, {"errors": {"events[0].id": "taken"}}),
        Delivery(
            "refused",
            errors={"status": "409", "message": ""},
            problem="the accounting service answered HTTP 409: ",
        ),
    ),
    # Whatever stands at the URL instead: a proxy's page, or nothing readable.
    (
        Reply(404, None, "<html><h1>404: Not Found</h1></html>"),
        Delivery(
            "refused",
            errors={
                "status": "404",
                "message": f"{URL_HINT} (<html><h1>404: Not Found</h1></html>)",
            },
            problem=f"the accounting service answered HTTP 404: {URL_HINT} "
            "(<html><h1>404: Not Found</h1></html>)",
        ),
    ),
    (
        Reply(405, ["a", "list"]),
        Delivery(
            "refused",
            errors={"status": "405", "message": URL_HINT},
            problem=f"the accounting service answered HTTP 405: {URL_HINT}",
        ),
    ),
]


@pytest.mark.parametrize(("reply", "expected"), DELIVERIES)
def test_what_a_reply_means_for_the_batch(reply: Reply, expected: Delivery) -> None:
    refusals: list[int] = []
    assert delivery(reply, refusals.append) == expected
    assert refusals == []


@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_token_is_reported_and_dead_letters_the_batch(code: int) -> None:
    refusals: list[int] = []
    outcome = delivery(Reply(code, {"message": "Forbidden"}), refusals.append)
    assert refusals == [code]
    assert outcome == Delivery(
        "refused",
        errors={"status": str(code), "message": "Forbidden"},
        problem=f"the accounting service answered HTTP {code}: Forbidden",
    )


GRACE = (
    "Group climate stores 12.0 GiB, over its storage quota of 10 GiB since 2026-12-06 10:00 "
    "UTC. New servers charged to it will be refused from 2026-12-09 10:00 UTC unless space "
    "is freed."
)
NEAR = "Group ocean stores 9.5 GiB, 95% of its storage quota of 10 GiB."


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"allowed": True, "reason": "Within quota.", "budget_left": {"core_hours": 3}},
            QuotaAnswer(True, "Within quota.", {"core_hours": 3.0}),
        ),
        (
            {"allowed": False, "reason": "Spent.", "budget_left": {"gpu_hours": None}},
            QuotaAnswer(False, "Spent.", {"gpu_hours": None}),
        ),
        ({"allowed": True, "reason": "ok"}, QuotaAnswer(True, "ok", {})),
        # Values that are not numbers (booleans included) are left out, not guessed.
        (
            {
                "allowed": True,
                "reason": "ok",
                "budget_left": {"a": 1.5, "b": True, "c": "2", "d": [1], 7: 0},
            },
            QuotaAnswer(True, "ok", {"a": 1.5, "7": 0.0}),
        ),
        # The group's display name and the limits of the budgets left, for the form.
        (
            {
                "allowed": True,
                "reason": "ok",
                "budget_left": {"core_hours": 150},
                "standing": {
                    "display_name": "Climate research",
                    "budget_limit": {"core_hours": 200, "gpu_hours": None, "x": "no"},
                },
            },
            QuotaAnswer(
                True,
                "ok",
                {"core_hours": 150.0},
                display_name="Climate research",
                budget_limit={"core_hours": 200.0, "gpu_hours": None},
            ),
        ),
        (
            {"allowed": True, "reason": "ok", "standing": {"display_name": 3}},
            QuotaAnswer(True, "ok", {}),
        ),
        ({"allowed": True, "reason": "ok", "standing": []}, QuotaAnswer(True, "ok", {})),
        # Storage warnings, to show with the answer; an older service sends none, and
        # anything but a list of strings is none: it must never break the form.
        (
            {"allowed": True, "reason": "ok", "warnings": [GRACE, ""]},
            QuotaAnswer(True, "ok", {}, warnings=(GRACE,)),
        ),
        (
            {"allowed": False, "reason": "Spent.", "warnings": [GRACE, NEAR]},
            QuotaAnswer(False, "Spent.", {}, warnings=(GRACE, NEAR)),
        ),
        ({"allowed": True, "reason": "ok", "warnings": []}, QuotaAnswer(True, "ok", {})),
        ({"allowed": True, "reason": "ok", "warnings": None}, QuotaAnswer(True, "ok", {})),
        ({"allowed": True, "reason": "ok", "warnings": GRACE}, QuotaAnswer(True, "ok", {})),
        ({"allowed": True, "reason": "ok", "warnings": [GRACE, 3]}, QuotaAnswer(True, "ok", {})),
        ({"allowed": True, "reason": "ok", "warnings": {"a": GRACE}}, QuotaAnswer(True, "ok", {})),
        ({"allowed": "yes", "reason": "ok"}, None),
        ({"allowed": 1, "reason": "ok"}, None),
        ({"allowed": True}, None),
        ({"allowed": True, "reason": None}, None),
        ({"allowed": True, "reason": "ok", "budget_left": [1]}, None),
        ({"allowed": True, "reason": "ok", "budget_left": None}, None),
        (None, None),
        ([True, "ok"], None),
        ("allowed", None),
    ],
)
def test_a_quota_answer_is_read_only_from_a_well_formed_body(
    body: Any, expected: QuotaAnswer | None
) -> None:
    answer = quota_answer(body)
    assert answer == expected
    if answer is not None:
        assert answer.source == "service"
