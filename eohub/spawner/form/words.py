"""The launch form's words: budgets, hours, resources and possessives, one format each.

Every number on the form goes through :func:`number` (one decimal at most, none when it
is zero, thousands separated) and possessives through :func:`possessive`, both the
hub's own wording (:mod:`eohub.domain.wording`), so "200 core-hours" and "researchers'
budget" read the same on the form and the hub's pages. Groups are named by their
display name from accounting's config, else by their id.
"""

from __future__ import annotations

from collections.abc import Mapping

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.accounting.ledger import GIB
from eohub.domain.launch.config import Size
from eohub.domain.wording import BUDGET_UNITS, number_text, possessive, quantity_text

UNKNOWN_BUDGET = "budget unknown: the accounting service did not answer"
#: ``12.5``, ``3``, ``1,250``: one decimal at most, and none when it is zero.
number = number_text


def group_name(group: str, answer: QuotaAnswer | None) -> str:
    """The group's display name from accounting's answer, else its id."""
    return (answer.display_name if answer is not None else "") or group


def budget_text(answer: QuotaAnswer | None) -> str:
    """Budget left in words ("150 core-hours left of 200"), "no limit", or empty if
    refused; a policy's estimates: unknown."""
    if answer is None or answer.decided_by == "policy":
        return UNKNOWN_BUDGET
    left, limits = answer.budget_left, answer.budget_limit
    parts = []
    for key, singular, plural in BUDGET_UNITS:
        value = left.get(key)
        if value is None:
            continue
        text = quantity_text(max(value, 0.0), singular, plural) + " left"
        limit = limits.get(key)
        parts.append(text if limit is None else f"{text} of {number(limit)}")
    if parts:
        return ", ".join(parts)
    return "no limit" if answer.allowed else ""


def answer_warnings(answer: QuotaAnswer | None) -> tuple[str, ...]:
    """The warnings accounting gave with its answer, each once, in its order (storage
    nearly full, or over its quota within its grace); none without an answer."""
    if answer is None:
        return ()
    return tuple(dict.fromkeys(w.strip() for w in answer.warnings if w.strip()))


def hours_text(hours: float | None) -> str:
    """Roughly how long a budget runs a size."""
    if hours is None:
        return "no limit"
    if hours < 1:
        minutes = max(round(hours * 60), 1)
        return f"about {minutes} minute" + ("" if minutes == 1 else "s")
    text = number(hours if hours < 10 else round(hours))
    return f"about {text} hour" + ("" if text == "1" else "s")


def size_budget_text(group: str, hours: float | None, *, known: bool = True) -> str:
    """What the budget of ``group`` (its display name) buys of a size, in words."""
    if not known:
        return f"the budget left of {group} is unknown"
    if hours is None:
        return f"no budget limit on {group}"
    return f"{hours_text(hours)} on {possessive(group)} budget"


def resources_text(size: Size) -> str:
    """``2 CPUs (up to 4) · 4 GiB memory · 1 GPU``: the guarantees, and any higher limits."""
    # Cores as the admin wrote them: a quarter core is not "0.2".
    cores = f"{size.cpu:g} CPU" + ("" if size.cpu == 1 else "s")
    if size.cpu_limit is not None and size.cpu_limit != size.cpu:
        cores += f" (up to {size.cpu_limit:g})"
    memory = f"{number(size.memory / GIB)} GiB memory"
    if size.memory_limit is not None and size.memory_limit != size.memory:
        memory += f" (up to {number(size.memory_limit / GIB)} GiB)"
    parts = [cores, memory]
    if size.gpus:
        parts.append(f"{size.gpus} GPU" + ("" if size.gpus == 1 else "s"))
    return " · ".join(parts)


def display_names(answers: Mapping[str, QuotaAnswer], groups: list[str]) -> dict[str, str]:
    """Each group's name as the form shows it."""
    return {g: group_name(g, answers.get(g)) for g in groups}


__all__ = [
    "UNKNOWN_BUDGET",
    "answer_warnings",
    "budget_text",
    "display_names",
    "group_name",
    "hours_text",
    "number",
    "possessive",
    "resources_text",
    "size_budget_text",
]
