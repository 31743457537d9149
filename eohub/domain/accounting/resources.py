"""The resources a session is charged for: the size limits and the user options that carry them.

Launch (the form, the options, the spawner's limits) and accounting (events, reconcile)
read sizes with the same rules from here, so neither imports the other's modules.

Size limits, and why every total fits the columns on all three databases
------------------------------------------------------------------------
The ledger keeps usage in signed 64-bit integers (``BIGINT`` on PostgreSQL and MariaDB,
``INTEGER`` on SQLite): at most ``2**63 - 1``, about 9.22e18. A session's size is
stored in 32-bit ``INT`` columns on PostgreSQL and MariaDB (``millicores``, ``gpus``):
at most ``2**31 - 1``; :data:`MAX_CPU` is 4.1e6 millicores, :data:`MAX_GPUS` 1024.

The largest numbers the databases compute are a running total (one group's usage in
one period; the longest period is a leap year, 366 d = 3.16e10 ms) and the ``SUM`` of
a rolling quota window (at most ``MAX_ROLLING_DAYS`` = 3660 d = 3.16e11 ms). SQLite's
``sum()`` fails with "integer overflow" past ``2**63 - 1``, and an upsert that adds past
it fails on PostgreSQL and MariaDB (SQLite turns the total into an inexact REAL), so
these sums, not the rows, set the limits. One
server of the largest size allowed, over the whole longest window:

========  ===========================  ================  ===========
unit      largest size                 * 3.16e11 ms      of 2**63
========  ===========================  ================  ===========
CPU       4096 cores = 4.096e6 mcores  1.30e18 mcore-ms  14.0 %
memory    4 TiB = 4,194,304 MiB        1.33e18 MiB-ms    14.4 %
GPUs      1024                         3.24e14 GPU-ms    0.004 %
========  ===========================  ================  ===========

so six such servers running for ten years, or 69 for a whole year, still fit in every
total of one group. (64 TiB, the old memory limit, overflowed a ten-year rolling
window with a single server.) What no per-event limit can bound is a group running
more than that at once: about 290,000 cores or 278 TiB held for a whole year (a
tenth of that over a ten-year rolling window).

A session's length needs no limit of its own: every time is between the year 2000 and
the service's clock plus :data:`~eohub.domain.accounting.events.DEFAULT_MAX_CLOCK_SKEW`
(``AccountingService.max_clock_skew``), and no total spans more than the longest window above.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_CPU = 4096  # cores; see the module docstring for why these bounds
MIN_CPU = 0.001  # one millicore, the ledger's unit
MAX_GPUS = 1024
MAX_MEMORY_BYTES = 4 * 1024**4  # 4 TiB

#: Keys of a server's ``user_options`` that say how to charge it.
GROUP_KEY = "group"
CPU_KEYS = ("cpu",)
MEMORY_KEYS = ("mem", "memory", "memory_bytes")
GPU_KEYS = ("gpus", "gpu")
PROFILE_KEY = "profile"
IMAGE_KEY = "image"
#: Where a launch of a KubeSpawner profile keeps what it charged (the keys above but the
#: group): apart from the profile's own options, which may be named ``cpu`` or ``image``.
CHARGED_KEY = "eohub_charged"


_BYTES = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?)?B?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_bytes(value: object) -> int:
    """Bytes from a number or a string like ``"4G"``, ``"512Mi"`` or ``"2.5G"``.

    ``K``, ``M``, ``G`` and ``T`` are powers of 1024, as in JupyterHub's
    ``ByteSpecification`` (a spawner's ``mem_limit``); ``Ki``, ``Mi``... are the same.
    """
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError("must be a number of bytes")
    if isinstance(value, int | float):
        amount, unit = Fraction(value), 1
    elif isinstance(value, str) and (m := _BYTES.match(value)):
        amount, unit = Fraction(m.group(1)), _UNITS[(m.group(2) or "")[:1].upper()]
    else:
        raise ValueError("must be a number of bytes or a size like 4G")
    result = int(amount * unit)
    if not 0 <= result <= MAX_MEMORY_BYTES:
        raise ValueError(f"must be between 0 and {MAX_MEMORY_BYTES} bytes")
    return result
