"""Sizes against the budget left: whether each fits, and for how many hours."""

from __future__ import annotations

from fractions import Fraction

import pytest

from eohub.domain.accounting.ledger import GIB
from eohub.domain.launch.budget import Budget, exact, hours_left, offered_sizes, size_fits
from eohub.domain.launch.config import Size, parse_launch_config
from tests.domain.launch.policy_fixtures import CONFIG, ENVIRONMENTS, SIZES, VOLUMES, budget


def sized(cpu: float = 1, memory: int = GIB, gpus: int = 0) -> Size:
    return Size(name="s", display_name="s", cpu=cpu, memory=memory, gpus=gpus)


FITS: list[tuple[str, Size, Budget, Fraction | float, bool]] = [
    ("no budget information", sized(), {}, 1, True),
    ("every budget unlimited", sized(), budget(), 1, True),
    ("exactly enough core-hours", sized(cpu=2), budget(core=2.0), 1, True),
    ("just short of core-hours", sized(cpu=2), budget(core=1.999999), 1, False),
    ("exactly enough for two hours", sized(cpu=2), budget(core=4), 2, True),
    ("just short of two hours", sized(cpu=2), budget(core=3.999999), 2, False),
    ("a tenth of a core, a tenth left", sized(cpu=0.1), budget(core=0.1), 1, True),
    ("a third of a core", sized(cpu=0.333), budget(core=0.333), 1, True),
    ("exactly enough memory", sized(memory=4 * GIB), budget(mem=4.0), 1, True),
    ("just short of memory", sized(memory=4 * GIB), budget(mem=3.99), 1, False),
    ("memory binds before cores", sized(cpu=1, memory=8 * GIB), budget(core=10, mem=4), 1, False),
    ("spent, even with no minimum", sized(), budget(core=0), 0, False),
    ("a little left, no minimum", sized(), budget(core=0.000001), 0, True),
    ("over-spent", sized(), budget(core=-3), 0, False),
    ("fractional minimum", sized(), budget(core=0.5), Fraction(1, 2), True),
    ("GPU budget spent: a CPU size", sized(), budget(core=10, gpu=0), 1, True),
    ("GPU budget spent: a GPU size", sized(gpus=1), budget(core=10, gpu=0), 1, False),
    ("GPU budget unlimited", sized(gpus=1), budget(core=10), 1, True),
    ("half a GPU-hour", sized(gpus=1), budget(gpu=0.5), 1, False),
    ("two GPUs, two GPU-hours", sized(gpus=2), budget(gpu=2), 1, True),
    ("two GPUs, just short", sized(gpus=2), budget(gpu=1.99), 1, False),
    ("memory budget spent stops a GPU size", sized(gpus=1), budget(mem=0, gpu=9), 1, False),
    ("infinite budget", sized(), budget(core=float("inf")), 1, True),
    ("not-a-number budget", sized(), budget(core=float("nan")), 1, False),
    ("missing keys are unlimited", sized(), {"core_hours": 5}, 1, True),
]


@pytest.mark.parametrize(
    ("size", "left", "min_hours", "fits"), [c[1:] for c in FITS], ids=[c[0] for c in FITS]
)
def test_size_fits(size: Size, left: Budget, min_hours: Fraction, fits: bool) -> None:
    assert size_fits(size, left, min_hours) is fits


@pytest.mark.parametrize(
    ("size", "left", "hours"),
    [
        (sized(cpu=1, memory=2 * GIB), budget(core=10, mem=10), Fraction(5)),
        (sized(cpu=4, memory=GIB), budget(core=10), Fraction(5, 2)),
        (sized(gpus=2), budget(gpu=3), Fraction(3, 2)),
        (sized(gpus=0), budget(gpu=3), None),
        (sized(), budget(), None),
        (sized(), budget(core=0, mem=10), Fraction(0)),
    ],
)
def test_hours_left(size: Size, left: Budget, hours: Fraction | None) -> None:
    assert hours_left(size, left) == hours


def test_offered_sizes_keep_the_order_and_say_what_fits() -> None:
    pangeo = CONFIG.environments["pangeo"]
    offers = offered_sizes(CONFIG, pangeo, budget(core=3))
    assert [(o.size.name, o.fits, o.hours) for o in offers] == [
        ("small", True, 3.0),
        ("medium", True, 1.5),
        ("large", False, 0.75),
    ]
    unknown = offered_sizes(CONFIG, pangeo, None)
    assert [(o.size.name, o.fits, o.hours) for o in unknown] == [
        ("small", True, None),
        ("medium", True, None),
        ("large", True, None),
    ]


def test_a_spent_gpu_budget_hides_only_gpu_sizes() -> None:
    offers = offered_sizes(CONFIG, CONFIG.environments["ml"], budget(core=100, gpu=0))
    assert [(o.size.name, o.fits) for o in offers] == [("small", True), ("gpu", False)]


def test_min_hours_comes_from_the_config() -> None:
    strict = parse_launch_config(ENVIRONMENTS, SIZES, VOLUMES, backend="kube", min_hours=4)
    offers = offered_sizes(strict, strict.environments["pangeo"], budget(core=4))
    assert [o.fits for o in offers] == [True, False, False]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, Fraction(1, 10)),  # the shortest repr, not the binary float
        (2, Fraction(2)),
        (Fraction(1, 3), Fraction(1, 3)),
        (float("inf"), Fraction(10**18)),
        (float("nan"), Fraction(0)),
        (float("-inf"), Fraction(0)),  # never "plenty"
    ],
)
def test_exact(value: Fraction | float, expected: Fraction) -> None:
    assert exact(value) == expected
