"""GroupPolicyMixin's log lines: a refusal is one warning, a failure one traceback."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from jupyterhub.auth import Authenticator

from eohub.auth.common import GroupPolicyMixin


class Policy(GroupPolicyMixin, Authenticator):  # type: ignore[misc]
    pass


@dataclass
class FailingUser:
    """A user outside a running hub whose server cannot be stopped."""

    name: str = "alice"
    stops: list[str] = field(default_factory=list)

    async def stop(self, name: str) -> None:
        self.stops.append(name)
        raise RuntimeError("the spawner lost its pod")


def eohub_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("eohub.")]


@pytest.mark.parametrize(
    ("policy", "groups", "line"),
    [
        (
            {"allowed_groups": {"climate"}},
            ["ocean"],
            "Login of alice refused: not a member of any allowed group",
        ),
        (
            {"blocked_groups": {"ocean"}, "allow_all": True},
            ["ocean"],
            "Login of alice refused: member of blocked group 'ocean'",
        ),
    ],
)
def test_a_refused_login_is_one_warning_line(
    policy: dict[str, Any], groups: list[str], line: str, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = Policy(**policy)
    with caplog.at_level(logging.INFO, logger="eohub"):
        allowed = authenticator.check_blocked_users(
            "alice", {"groups": groups}
        ) and authenticator.check_allowed("alice", {"groups": groups})
    assert allowed is False
    (record,) = eohub_records(caplog)
    assert (record.name, record.levelno) == ("eohub.auth.common", logging.WARNING)
    assert record.getMessage() == line
    assert record.exc_info is None


def test_a_withdrawal_outside_a_hub_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="eohub"):
        asyncio.run(Policy().withdraw_access(FailingUser(), "gone"))
    (record,) = eohub_records(caplog)
    assert record.getMessage() == "Refresh of alice: access withdrawn (gone)"


def test_a_server_that_fails_to_stop_logs_its_traceback_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = FailingUser()

    async def stop_in_background() -> None:
        Policy()._stop_server(user, "", None)
        for _ in range(3):  # the stop, then its done callback
            await asyncio.sleep(0)

    with caplog.at_level(logging.INFO, logger="eohub"):
        asyncio.run(stop_in_background())
    assert user.stops == [""]
    (record,) = eohub_records(caplog)
    assert record.levelno == logging.ERROR
    assert record.getMessage() == (
        "Stopping server '' of alice after withdrawal failed: the spawner lost its pod"
    )
    assert caplog.text.count("Traceback") == 1
