"""Open XDMoD's Storage realm: storage samples as the JSON its ETL ingests.

XDMoD's Storage realm ingests JSON, not Slurm records (docs ``storage.md``, schema
``etl_schemas.d/storage/usage.schema.json`` in https://github.com/ubccr/xdmod): one entry
per user and measurement, see :func:`storage_record`. The admin ingests a folder of them
with::

    xdmod-shredder -r <resource> -f storage -d <folder> && xdmod-ingestor
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.reports.xdmod import NODE_NAME, slurm_time, xdmod_text

MAX_STORAGE_NAME = 30  # user and pi in the storage schema
MAX_BIGINT = 2**64 - 1  # bigint(20) unsigned, the storage schema's integers


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
    """

    resource: str
    mountpoint: str = "/home"
    hard_thresholds: Mapping[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not NODE_NAME.match(self.resource):
            raise ValueError("StorageOptions.resource must be an XDMoD resource code")
        if not self.mountpoint.startswith("/") or self.mountpoint != xdmod_text(self.mountpoint):
            raise ValueError(
                "StorageOptions.mountpoint must be an absolute path of printable ASCII, "
                "without '|' or '%', at most 255 characters"
            )
        for group, limit in self.hard_thresholds.items():
            if limit is not None and not 0 <= limit <= MAX_BIGINT:
                raise ValueError(f"StorageOptions.hard_thresholds[{group!r}] is out of range")


def storage_record(sample: StorageSample, options: StorageOptions) -> dict[str, Any]:
    """One entry of XDMoD's storage JSON, in the form ``usage.schema.json`` requires.

    Required: ``resource``, ``mountpoint``, ``user`` and ``pi`` (each at most 30
    characters), ``dt``, ``file_count`` and ``logical_usage``. ``dt`` must be RFC 3339
    in UTC, ``2017-01-01T00:00:00Z``. Sizes are bytes. ``pi`` is the group, which is also
    what the Slurm shredder uses as the PI. ``hard_threshold`` is written only when the
    group has one. ``physical_usage`` and ``soft_threshold`` are optional and left out,
    because we do not measure them.

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
        "pi": xdmod_text(sample.group, MAX_STORAGE_NAME),
        "dt": slurm_time(sample.measured_at) + "Z",
        "file_count": sample.file_count,
        "logical_usage": sample.bytes,
    }
    threshold = options.hard_thresholds.get(sample.group)
    if threshold is not None:
        record["hard_threshold"] = threshold
    return record


def storage_records(
    samples: Iterable[StorageSample], options: StorageOptions
) -> list[dict[str, Any]]:
    """XDMoD storage JSON (a list of :func:`storage_record` entries) for ``samples``."""
    return [storage_record(sample, options) for sample in samples]
