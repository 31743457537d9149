"""QuotaCheck: the one quota question of a spawn, mixed into QuotaSpawnerMixin."""

from __future__ import annotations

import time
from typing import Any

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.policy import Launch
from eohub.spawner.errors import user_error
from eohub.spawner.metrics import SPAWN_STEP_SECONDS


class QuotaCheck:
    """Ask accounting whether a launch may start; time it for ``eohub_spawn_step_seconds``."""

    accounting: Any
    _quota_seconds: float = 0.0

    async def allowed_quota(self, launch: Launch) -> QuotaAnswer:
        """Accounting's answer for ``launch``; a 403 with its reason when it refuses."""
        answer = await self.check_quota(launch)
        if not answer.allowed:
            raise user_error(403, answer.reason, "Quota")
        return answer

    async def check_quota(self, launch: Launch) -> QuotaAnswer:
        resources = launch.size.charged
        began = time.perf_counter()
        try:
            answer: QuotaAnswer = await self.accounting.check_quota(
                user=self.user.name,  # type: ignore[attr-defined]
                group=launch.group,
                cpu=resources.millicores / 1000,
                memory_bytes=resources.memory_bytes,
                gpus=resources.gpus,
                server=self.name,  # type: ignore[attr-defined]
            )
        finally:
            # authorize_launch subtracts it from the policy step's time.
            spent = time.perf_counter() - began
            self._quota_seconds += spent
            SPAWN_STEP_SECONDS.labels(step="quota").observe(spent)
        return answer


__all__ = ["QuotaCheck"]
