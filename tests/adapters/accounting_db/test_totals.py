"""Running-total deltas: the one-day shortcut agrees with the general period split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from eohub.adapters.accounting_db.totals import TotalsDelta
from eohub.domain.accounting.ledger import Resources, split_usage
from eohub.domain.accounting.periods import LEDGER_KINDS

times = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)
resources = st.builds(Resources, st.integers(1, 64_000), st.integers(0, 2**40), st.integers(0, 8))


@given(
    resources,
    times,
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=100)),
    st.sampled_from([1, -1]),
)
def test_deltas_match_the_period_split(
    r: Resources, start: datetime, length: timedelta, sign: int
) -> None:
    delta = TotalsDelta()
    delta.add_session("g", "alice", r, start, start + length, sign)
    expected: dict[tuple[str, str, str, datetime], list[int]] = {}
    for kind in LEDGER_KINDS:
        for period, usage in split_usage(r, start, start + length, kind):
            units = [sign * usage.cpu_mcore_ms, sign * usage.mem_mib_ms, sign * usage.gpu_ms]
            for who in ("", "alice"):
                expected[("g", who, kind.value, period)] = units
    assert delta.deltas == expected
