"""Sizes against a group's budget left: does a size fit, and for how long?

The budget left comes from accounting (:func:`eohub.domain.accounting.quota.budget_left`). A size
*fits* when the budget buys at least the config's ``min_hours`` of it, so the form does
not offer a size that the next quota check would stop within minutes. The arithmetic is
exact (fractions), so a budget of exactly enough fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from eohub.domain.accounting.ledger import GIB
from eohub.domain.launch.config import Environment, LaunchConfig, Size

#: Hours left per budget (``core_hours``, ``memory_gib_hours``, ``gpu_hours``), as
#: :func:`eohub.domain.accounting.quota.budget_left` gives them; ``None`` or a missing key:
#: unlimited.
Budget = Mapping[str, float | None]


@dataclass(frozen=True)
class SizeOffer:
    """A size as the form shows it: whether it fits, and the hours the budget buys.

    ``hours`` is None when no budget limits the size.
    """

    size: Size
    fits: bool
    hours: float | None


def exact(value: Fraction | float) -> Fraction:
    """``value`` as an exact fraction.

    A float goes through its shortest repr, so that a budget of 0.1 core-hours is exactly
    1/10. Infinity counts as plenty; NaN and minus infinity as nothing.
    """
    if not isinstance(value, float):
        return Fraction(value)
    if not math.isfinite(value):
        return Fraction(10**18) if value > 0 else Fraction(0)
    return Fraction(repr(value))


def hours_left(size: Size, budget_left: Budget) -> Fraction | None:
    """How many hours of ``size`` the budget left buys; None when nothing limits it.

    As in :func:`eohub.domain.accounting.quota.decide`, a spent core-hour or memory budget stops
    every size, a spent GPU budget only the sizes with GPUs.
    """
    rates = [("core_hours", size.charged.cores), ("memory_gib_hours", Fraction(size.memory, GIB))]
    if size.gpus:
        rates.append(("gpu_hours", Fraction(size.gpus)))
    hours: Fraction | None = None
    for key, rate in rates:
        value = budget_left.get(key)
        if value is None:
            continue
        left = max(exact(value), Fraction(0))
        if left == 0:
            return Fraction(0)
        if rate:
            hours = left / rate if hours is None else min(hours, left / rate)
    return hours


def size_fits(size: Size, budget_left: Budget, min_hours: Fraction | float = 1) -> bool:
    """Whether the budget left runs ``size`` for at least ``min_hours`` (and is not spent)."""
    hours = hours_left(size, budget_left)
    return hours is None or (hours > 0 and hours >= exact(min_hours))


def _offered(config: LaunchConfig, env: Environment) -> list[Size]:
    return [config.sizes[n] for n in env.sizes if env.gpu or not config.sizes[n].gpus]


def offered_sizes(
    config: LaunchConfig, env: Environment, budget_left: Budget | None
) -> list[SizeOffer]:
    """The sizes ``env`` offers, in order, each with whether it fits ``budget_left``.

    ``budget_left=None`` means no budget information: every size fits.
    """
    offers = []
    for size in _offered(config, env):
        hours = None if budget_left is None else hours_left(size, budget_left)
        fits = budget_left is None or size_fits(size, budget_left, config.min_hours)
        offers.append(SizeOffer(size, fits, None if hours is None else float(hours)))
    return offers


__all__ = ["Budget", "SizeOffer", "exact", "hours_left", "offered_sizes", "size_fits"]
