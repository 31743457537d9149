"""What the accounting service's replies mean to the hub's client.

A quota answer (:class:`QuotaAnswer`), and the fate of a batch of events sent
(:class:`~eohub.accounting.client.sender.Delivery`) from the status and body the
service, or whatever stood at its URL, sent back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from eohub.accounting.client.http import Reply
from eohub.accounting.client.sender import Delivery

QuotaSource = Literal["service", "last-known", "fail-open", "fail-closed"]
#: Why the service did not decide: no answer in time; the connection or the hub's token
#: refused; any other failure (an HTTP error, an unreadable answer, a network error).
PolicyReason = Literal["", "timeout", "refused", "error"]


@dataclass(frozen=True)
class QuotaAnswer:
    """The answer to "may this user start this server, charged to this group?".

    Attributes
    ----------
    allowed
        Whether to start the server.
    reason
        Why, in words to show the user.
    budget_left
        Hours left per budget (``core_hours``, ``gpu_hours``, ``memory_gib_hours``);
        ``None`` where no budget limits it. Empty when the service did not answer.
    source
        ``"service"`` when the service decided. When it could not, how the hub's
        ``quota_failure_policy`` did: ``"last-known"`` from the service's last standing,
        ``"fail-open"`` or ``"fail-closed"``.
    outage
        Why the service did not decide (:data:`PolicyReason`); empty when it did.
    display_name
        The group's display name in the service's config; empty when it sent none.
    budget_limit
        The limit of each budget whose hours left ``budget_left`` gives (``None``:
        unlimited); empty when the service sent none.
    warnings
        Words to show with an allowed (or refused) answer: the group's storage is nearly
        full, or over its quota within its grace. Empty when the service sent none.
    """

    allowed: bool
    reason: str
    budget_left: Mapping[str, float | None] = field(default_factory=dict)
    source: QuotaSource = "service"
    outage: PolicyReason = ""
    display_name: str = ""
    budget_limit: Mapping[str, float | None] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def decided_by(self) -> Literal["service", "policy"]:
        """Who decided: the accounting service, or the hub's failure policy."""
        return "service" if self.source == "service" else "policy"


def delivery(reply: Reply, token_refused: Callable[[int], None]) -> Delivery:
    """What a reply other than 200 means for the batch sent.

    A 4xx is a verdict that sending the same request again cannot change, so it is never
    retried: the service's field errors (400, 422) dead-letter the events they name; a
    413 sends the batch in halves; any other 4xx (a refused token, a wrong URL, a proxy's
    error page) dead-letters the whole batch with the status and message, for an admin
    to requeue after the fix. 5xx and no answer are retried: a 503 is the service's
    "database unavailable", the others a service or proxy failing for now.
    """
    code, body = reply.code, reply.body
    if not 400 <= code < 500:
        what = "database unavailable" if code == 503 else "failing"
        return Delivery("retry", problem=f"the accounting service answered HTTP {code} ({what})")
    if code in (401, 403):
        token_refused(code)
    reasons = {"status": str(code)}
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(body, dict):
        reasons["message"] = str(body.get("message", ""))
        if code in (400, 422) and isinstance(errors, dict) and errors:
            # The service's verdict on named events (or on the whole body).
            return Delivery("rejected", errors={str(k): str(v) for k, v in errors.items()})
    else:
        reasons["message"] = (
            "not an answer of the accounting service: check c.AccountingClient.url"
            + (f" ({reply.text})" if reply.text else "")
        )
    if code == 413:
        return Delivery("rejected", errors=reasons)  # too large: halves, then one event
    return Delivery(
        "refused",
        errors=reasons,
        problem=f"the accounting service answered HTTP {code}: {reasons['message']}",
    )


def quota_answer(body: Any) -> QuotaAnswer | None:
    """The service's quota answer, or None when the body is not one."""
    if not isinstance(body, dict):
        return None
    allowed, reason, left = body.get("allowed"), body.get("reason"), body.get("budget_left", {})
    if not isinstance(allowed, bool) or not isinstance(reason, str) or not isinstance(left, dict):
        return None
    standing = body.get("standing")
    standing = standing if isinstance(standing, dict) else {}
    name = standing.get("display_name")
    return QuotaAnswer(
        allowed,
        reason,
        _hours(left),
        "service",
        display_name=name if isinstance(name, str) else "",
        budget_limit=_hours(standing.get("budget_limit")),
        warnings=_warnings(body.get("warnings")),
    )


def _warnings(raw: object) -> tuple[str, ...]:
    """The warnings' words; anything but a list of strings is none (an older or odd
    service must not break the launch form)."""
    if not isinstance(raw, list) or not all(isinstance(w, str) for w in raw):
        return ()
    return tuple(w for w in raw if w)


def _hours(raw: object) -> dict[str, float | None]:
    """The numbers (or ``None``: unlimited) of a budget mapping; anything else is left out."""
    budget: dict[str, float | None] = {}
    for name, value in raw.items() if isinstance(raw, dict) else ():
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            budget[str(name)] = None if value is None else float(value)
    return budget


__all__ = ["PolicyReason", "QuotaAnswer", "QuotaSource", "delivery", "quota_answer"]
