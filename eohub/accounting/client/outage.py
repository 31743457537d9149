"""What the hub shows of an accounting outage: one warning, a counter, one recovery line.

While the service cannot answer, every quota check is decided by the hub's
``quota_failure_policy``. That is counted, by policy and reason, in the hub's Prometheus
metrics (``/hub/metrics``), and said once in the hub's log when the outage begins and
once when it ends, not once per spawn: a storm of spawns in an outage stays readable.
"""

from __future__ import annotations

import time

from prometheus_client import Counter

from eohub.logs import get_logger

log = get_logger(__name__)

#: In JupyterHub's default registry, which ``/hub/metrics`` serves.
QUOTA_CHECKS_BY_POLICY = Counter(
    "eohub_quota_checks_by_policy",
    "Quota checks the accounting service did not decide, decided by the hub's "
    "quota_failure_policy instead. policy: last_known, open or closed (last_known checks "
    "without a usable standing count under the fallback). reason: timeout (no answer in "
    "time), refused (the connection, or the hub's token), error (an HTTP error, an "
    "unreadable answer, any other network failure).",
    ["policy", "reason"],
)


#: A service that fails again within this many seconds of answering is still in the
#: same (flapping) outage: no new warning.
FLAPPING_SECONDS = 300.0


class OutageLog:
    """The hub's record of one accounting outage at a time."""

    def __init__(self) -> None:
        self.failing = False  # the last check was decided by the policy
        self.began = 0.0  # the outage's first check decided by the policy
        self.back_at: float | None = None  # the service's last recovery
        self.decided = 0  # checks decided by the policy since the outage began

    def decided_by_policy(
        self, *, policy: str, reason: str, problem: str, detail: str, user: str, group: str
    ) -> None:
        """Count a check the policy decided; warn if it begins an outage."""
        QUOTA_CHECKS_BY_POLICY.labels(policy=policy, reason=reason).inc()
        now = time.monotonic()
        if not self.failing:
            self.failing = True
            flapping = self.back_at is not None and now - self.back_at < FLAPPING_SECONDS
            if not flapping:
                self.began, self.decided = now, 0
                log.warning(
                    "The accounting service cannot answer quota checks: {problem} "
                    "({detail}). Until it answers again, the hub's {policy} policy decides "
                    "them (c.AccountingClient.quota_failure_policy); this is logged once per "
                    "outage, and counted in the eohub_quota_checks_by_policy_total metric",
                    problem=problem,
                    detail=detail,
                    policy=policy,
                )
        self.decided += 1
        log.debug(
            "Quota check of {user} for group {group} decided by the {policy} policy: {reason}",
            user=user,
            group=group,
            policy=policy,
            reason=reason,
        )

    def service_answered(self) -> None:
        """The service decided a check: say the outage is over, if there was one."""
        if not self.failing:
            return
        now = time.monotonic()
        self.failing, self.back_at = False, now
        log.info(
            "The accounting service answers quota checks again; {count} checks were "
            "decided by the hub's policy since the outage began {seconds:.0f} s ago",
            seconds=now - self.began,
            count=self.decided,
        )


__all__ = ["QUOTA_CHECKS_BY_POLICY", "OutageLog"]
