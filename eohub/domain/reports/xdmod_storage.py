"""Open XDMoD's Storage realm: storage samples as the JSON its ETL ingests.

XDMoD's Storage realm ingests JSON, not Slurm records (docs ``storage.md``, schema
``etl_schemas.d/storage/usage.schema.json`` in https://github.com/ubccr/xdmod): one entry
per user and measurement, see :func:`storage_record`. eohub measures a user's space in a
group at several sources (a home root, a scratch root, a volume claim), each a sample of
its own; the samples of one user, group and time are one measurement to XDMoD, so they
are summed into one entry first (:func:`one_per_measurement`). The admin ingests a
folder of them with::

    xdmod-shredder -r <resource> -f storage -d <folder> && xdmod-ingestor
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.reports.xdmod import MAX_NAME, NODE_NAME, slurm_time, xdmod_text

MAX_STORAGE_NAME = MAX_NAME  # user and pi in the storage schema, as in the Slurm export
MAX_BIGINT = 2**64 - 1  # bigint(20) unsigned, the storage schema's integers
#: The ``pi`` of samples charged to no group: XDMoD requires one.
UNASSIGNED_PI = "unassigned"
#: A name XDMoD stores as written: plain letters, digits, '.', '_' and '-', 30 at most.
XDMOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,29}$")


@dataclass(frozen=True)
class StorageOptions:
    """Where storage samples belong in XDMoD.

    Parameters
    ----------
    resource
        The XDMoD storage resource's name (its code in ``resources.json``).
    mountpoint
        The file system the samples measure, as users see it.
    hard_thresholds
        Each group's quota in bytes. A group that is missing, or maps to ``None``, has no
        threshold, and the field is left out.
    unassigned_pi
        The ``pi`` of samples charged to no group (XDMoD requires one): their space
        shows under this PI, and under the user as always.
    """

    resource: str
    mountpoint: str = "/home"
    hard_thresholds: Mapping[str, int | None] = field(default_factory=dict)
    unassigned_pi: str = UNASSIGNED_PI

    def __post_init__(self) -> None:
        if not NODE_NAME.match(self.resource):
            raise ValueError("StorageOptions.resource must be an XDMoD resource code")
        if not self.mountpoint.startswith("/") or self.mountpoint != xdmod_text(self.mountpoint):
            raise ValueError(
                "StorageOptions.mountpoint must be an absolute path of printable ASCII, "
                "without '|' or '%', at most 255 characters"
            )
        if not XDMOD_NAME.match(self.unassigned_pi):
            raise ValueError(
                "StorageOptions.unassigned_pi must be letters, digits, '.', '_' or '-' "
                "(at most 30), starting with a letter or digit"
            )
        for group, limit in self.hard_thresholds.items():
            if limit is not None and not 0 <= limit <= MAX_BIGINT:
                raise ValueError(f"StorageOptions.hard_thresholds[{group!r}] is out of range")


def storage_record(sample: StorageSample, options: StorageOptions) -> dict[str, Any]:
    """One entry of XDMoD's storage JSON, in the form ``usage.schema.json`` requires.

    Required: ``resource``, ``mountpoint``, ``user`` and ``pi`` (each at most 30
    characters), ``dt``, ``file_count`` and ``logical_usage``. ``dt`` must be RFC 3339
    in UTC, ``2017-01-01T00:00:00Z``. Sizes are bytes; ``file_count`` is the sampler's
    count (0: not counted). ``pi`` is the group, which is also what the Slurm shredder
    uses as the PI, or ``options.unassigned_pi`` for a sample charged to no group. User
    and PI are cut as the Slurm export cuts them (:data:`MAX_NAME`), so XDMoD joins both
    realms by user name. ``hard_threshold`` is written only when the group has one.
    ``physical_usage`` and ``soft_threshold`` are optional and left out, because we do
    not measure them.

    Raises
    ------
    ValueError
        If a size or count is negative or over 2**64 - 1.
    """
    for label, number in (("bytes", sample.bytes), ("file_count", sample.file_count)):
        if not 0 <= number <= MAX_BIGINT:
            raise ValueError(f"storage sample of {sample.user!r}: {label} is out of range")
    record: dict[str, Any] = {
        "resource": options.resource,
        "mountpoint": options.mountpoint,
        "user": xdmod_text(sample.user, MAX_STORAGE_NAME),
        "pi": xdmod_text(sample.group, MAX_STORAGE_NAME)
        if sample.group
        else options.unassigned_pi,
        "dt": slurm_time(sample.measured_at) + "Z",
        "file_count": sample.file_count,
        "logical_usage": sample.bytes,
    }
    threshold = options.hard_thresholds.get(sample.group)
    if threshold is not None:
        record["hard_threshold"] = threshold
    return record


def one_per_measurement(samples: Iterable[StorageSample]) -> Iterator[StorageSample]:
    """``samples`` with those of one user, group and time summed into one (bytes and file
    counts; source ``""``): a sampler posts one sample per source, all with the round's
    time, and XDMoD keeps one entry per user, PI and time.

    ``samples`` come in time order, as the store yields them, so only the samples of one
    time are held at once; their order is kept (each sum where its first sample was).
    """
    held: dict[tuple[str, str], StorageSample] = {}
    at: datetime | None = None
    for sample in samples:
        if sample.measured_at != at:
            yield from held.values()
            held, at = {}, sample.measured_at
        key = (sample.user, sample.group)
        first = held.get(key)
        held[key] = (
            replace(sample, source="")
            if first is None
            else replace(
                first,
                bytes=first.bytes + sample.bytes,
                file_count=first.file_count + sample.file_count,
            )
        )
    yield from held.values()


def storage_records(
    samples: Iterable[StorageSample], options: StorageOptions
) -> list[dict[str, Any]]:
    """XDMoD storage JSON (a list of :func:`storage_record` entries) for ``samples``, one
    per measurement (:func:`one_per_measurement`)."""
    return [storage_record(sample, options) for sample in one_per_measurement(samples)]
