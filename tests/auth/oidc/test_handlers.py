"""The OIDC handlers' own logic: the provider error page, the login nonce, discovery first.

The handlers themselves run in a real hub in ``test_authenticator.py``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from oauthenticator.oauth2 import _serialize_state
from tornado import web

from eohub.adapters.oidc import DiscoveryError, IssuerMismatch
from eohub.auth.oidc.handlers import (
    CONFIG_PROBLEM,
    UNREACHABLE,
    ensure_metadata,
    login_nonce,
    provider_unusable,
)


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            IssuerMismatch("https://idp.example.org", "https://idp.example.org/"),
            500,
            CONFIG_PROBLEM,
        ),
        (DiscoveryError("connection refused"), 503, UNREACHABLE),
    ],
)
def test_provider_unusable(error: DiscoveryError, status: int, message: str) -> None:
    page = provider_unusable(error)
    assert (page.status_code, page.log_message) == (status, message)


def with_cookie(value: str | None) -> Any:
    return SimpleNamespace(get_state_cookie=lambda: value)


def test_login_nonce_is_read_from_the_state_cookie() -> None:
    cookie = _serialize_state({"state_id": "s", "nonce": "n-123"})
    assert login_nonce(with_cookie(cookie)) == "n-123"


@pytest.mark.parametrize(
    "handler",
    [
        SimpleNamespace(),  # not a callback handler
        with_cookie(None),
        with_cookie(_serialize_state({"state_id": "s"})),
        with_cookie(_serialize_state({"state_id": "s", "nonce": ""})),
        with_cookie(_serialize_state({"state_id": "s", "nonce": 7})),
    ],
)
def test_a_login_without_a_nonce_is_refused(handler: Any) -> None:
    with pytest.raises(web.HTTPError) as refused:
        login_nonce(handler)
    assert refused.value.status_code == 403
    assert "has no nonce" in str(refused.value.log_message)


class Authenticator:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.asked = 0

    async def provider_metadata(self) -> dict[str, str]:
        self.asked += 1
        if self.error is not None:
            raise self.error
        return {}


async def test_ensure_metadata_discovers_the_provider() -> None:
    handler = SimpleNamespace(authenticator=Authenticator())
    await ensure_metadata(handler)
    assert handler.authenticator.asked == 1


@pytest.mark.parametrize(
    ("error", "status"),
    [(IssuerMismatch("https://a.org", "https://b.org"), 500), (DiscoveryError("down"), 503)],
)
async def test_ensure_metadata_turns_discovery_errors_into_pages(
    error: DiscoveryError, status: int
) -> None:
    handler = SimpleNamespace(authenticator=Authenticator(error))
    with pytest.raises(web.HTTPError) as refused:
        await ensure_metadata(handler)
    assert refused.value.status_code == status
