"""The launch form's words: budgets, hours, sizes, as the view model writes them."""

from __future__ import annotations

import pytest

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.config import parse_launch_config
from eohub.spawner.form.words import (
    UNKNOWN_BUDGET,
    budget_text,
    group_name,
    hours_text,
    number,
    possessive,
    resources_text,
    size_budget_text,
)
from tests.spawner.form.forms import UNLIMITED, allowed, kube_config


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (None, UNKNOWN_BUDGET),
        (QuotaAnswer(True, "fail-open", {}, "fail-open"), UNKNOWN_BUDGET),
        # The last known standing's projection is an estimate: not shown as known.
        (QuotaAnswer(True, "estimate", {"core_hours": 3.0}, "last-known"), UNKNOWN_BUDGET),
        (allowed(), "no limit"),
        (allowed(12.25), "12.2 core-hours left"),
        (allowed(1234.5, gpu_hours=0.5), "1,234.5 core-hours left, 0.5 GPU-hours left"),
        (QuotaAnswer(True, "ok", {"memory_gib_hours": 8.0}), "8 GiB-hours of memory left"),
        (QuotaAnswer(True, "ok", {"core_hours": -3.0}), "0 core-hours left"),
        # With the limit the service measured it against: "left of", in one format.
        (
            QuotaAnswer(True, "ok", {"core_hours": 200.0}, budget_limit={"core_hours": 200.0}),
            "200 core-hours left of 200",
        ),
        (
            QuotaAnswer(
                True,
                "ok",
                {"core_hours": 1234.56, "gpu_hours": None},
                budget_limit={"core_hours": 2000.0, "gpu_hours": None},
            ),
            "1,234.6 core-hours left of 2,000",
        ),
        # Refused with no budget (a group accounting does not know): only the reason.
        (QuotaAnswer(False, "The group 'x' has no allocation", dict(UNLIMITED)), ""),
    ],
)
def test_budget_text(answer: QuotaAnswer | None, text: str) -> None:
    assert budget_text(answer) == text


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (None, "no limit"),
        (0.01, "about 1 minute"),
        (0.5, "about 30 minutes"),
        (1.0, "about 1 hour"),
        (1.25, "about 1.2 hours"),
        (9.96, "about 10 hours"),
        (123.4, "about 123 hours"),
    ],
)
def test_hours_text(hours: float | None, text: str) -> None:
    assert hours_text(hours) == text


def test_resources_text() -> None:
    config = kube_config()
    assert resources_text(config.sizes["small"]) == "1 CPU · 2 GiB memory"
    assert resources_text(config.sizes["gpu"]) == "4 CPUs · 16 GiB memory · 1 GPU"


@pytest.mark.parametrize(
    ("value", "text"),
    [(3.0, "3"), (12.5, "12.5"), (12.25, "12.2"), (1250.0, "1,250"), (0.04, "0"), (0.05, "0.1")],
)
def test_number(value: float, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize(
    ("hours", "known", "text"),
    [
        (2.0, True, "about 2 hours on climate's budget"),
        (None, True, "no budget limit on climate"),
        (2.0, False, "the budget left of climate is unknown"),
    ],
)
def test_size_budget_text(hours: float | None, known: bool, text: str) -> None:
    assert size_budget_text("climate", hours, known=known) == text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("climate", "climate's"),
        ("researchers", "researchers'"),
        ("Climate research", "Climate research's"),
        ("EO scientists", "EO scientists'"),
    ],
)
def test_possessive(name: str, text: str) -> None:
    assert possessive(name) == text
    assert size_budget_text(name, 2.0) == f"about 2 hours on {text} budget"


@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (None, "climate"),
        (QuotaAnswer(True, "ok", {}), "climate"),
        (QuotaAnswer(True, "ok", {}, display_name="Climate research"), "Climate research"),
    ],
)
def test_a_group_is_named_by_its_display_name_else_its_id(
    answer: QuotaAnswer | None, text: str
) -> None:
    assert group_name("climate", answer) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [
        ({"cpu": 0.5, "memory": "512M"}, "0.5 CPUs · 0.5 GiB memory"),
        ({"cpu": 2, "memory": "4G", "cpu_limit": 4}, "2 CPUs (up to 4) · 4 GiB memory"),
        ({"cpu": 2, "memory": "4G", "cpu_limit": 2}, "2 CPUs · 4 GiB memory"),
        (
            {"cpu": 1, "memory": "4G", "memory_limit": "6G", "gpus": 2},
            "1 CPU · 4 GiB memory (up to 6 GiB) · 2 GPUs",
        ),
    ],
)
def test_resources_text_shows_limits_above_the_guarantees(
    size: dict[str, object], text: str
) -> None:
    config = parse_launch_config({}, {"s": size}, {}, backend="kube")
    assert resources_text(config.sizes["s"]) == text
