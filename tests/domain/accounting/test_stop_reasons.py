"""The stop reasons' words and XDMoD states, for the stops whose cause the hub cannot name.

A server that exits cleanly (JupyterLab's File > Shut Down, or jupyter-server's own idle
shutdown) is recorded ``stopped``, as is a stop through the hub by a caller it does not
know: the words must be true of all of them, and none is a failure for XDMoD.
"""

from __future__ import annotations

import pytest

from eohub.domain.accounting.stop_reasons import (
    REASON_WORDS,
    STOP_REASONS,
    reason_words,
    stop_reason_text,
    xdmod_state,
)

# (reason, the words after "Stopped: ", the XDMoD state)
REASONS = [
    ("stopped", "stopped (by whom is not known)", "COMPLETED"),
    ("failed", "the server failed or could not start", "FAILED"),
    ("user", "stopped by its user", "COMPLETED"),
    ("idle", "stopped after being idle for its limit", "TIMEOUT"),
    ("max_duration", "reached its maximum duration", "TIMEOUT"),
]


@pytest.mark.parametrize(("reason", "words", "state"), REASONS)
def test_words_and_xdmod_state(reason: str, words: str, state: str) -> None:
    assert reason_words(reason) == words
    assert stop_reason_text(reason) == words
    assert xdmod_state(reason) == state


def test_the_words_for_stopped_do_not_claim_the_hub_stopped_it() -> None:
    # A clean exit never went through the hub.
    assert "hub" not in reason_words("stopped")
    assert "not known" in reason_words("stopped")


@pytest.mark.parametrize(
    ("stopped_by", "expected"),
    [
        ("", "stopped (by whom is not known)"),
        ("carol", "stopped by carol"),  # a PI's stop from the usage pages names them
    ],
)
def test_a_known_person_replaces_the_unknown(stopped_by: str, expected: str) -> None:
    assert stop_reason_text("stopped", stopped_by=stopped_by) == expected


def test_every_reason_has_words() -> None:
    assert set(REASON_WORDS) == set(STOP_REASONS)
