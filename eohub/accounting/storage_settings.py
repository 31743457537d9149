"""The accounting service's storage settings: a parent of
:class:`~eohub.accounting.app.AccountingService`, so they are set as
``c.AccountingService.storage_grace`` and so on, and read once into a
:class:`~eohub.domain.accounting.storage_quota.StoragePolicy`."""

from __future__ import annotations

from datetime import timedelta

from traitlets import Float, Integer
from traitlets.config import Configurable

from eohub.domain.accounting.storage_quota import StoragePolicy


class StorageSettings(Configurable):
    """How groups are held to their storage quota (whole-group ``storage_bytes`` rows)."""

    storage_grace = Integer(
        259200,
        min=0,
        help="""Seconds a group may stay over its storage quota (its whole-group row's
        ``storage_bytes``) before new servers charged to it are refused; until then they
        start, with a warning on the launch form and usage pages naming the date. 0
        refuses at once. Running servers are never stopped for storage. Default: 3 days.""",
    ).tag(config=True)

    storage_warning_fraction = Float(
        0.9,
        min=0.0,
        max=1.0,
        help="Share of its storage quota from which a group is warned it is nearly full, on "
        "the launch form and usage pages (0.9: from 90%; 0: never; over it: always).",
    ).tag(config=True)

    storage_sample_max_age = Integer(
        604800,
        min=0,
        help="""Seconds a storage sample counts toward its group's storage (quota checks,
        usage pages). Older, it no longer counts: a user moved to another group, or a
        folder or volume claim deleted, stops counting once no sampler measures it. Set it
        well above the samplers' ``interval``, or a sampler that is late drops its group's
        figure. 0: samples count until a later one replaces them. Default: 7 days.""",
    ).tag(config=True)

    def storage_policy(self) -> StoragePolicy:
        """The storage settings, as the store, quota checks and pages apply them."""
        return StoragePolicy(
            timedelta(seconds=self.storage_grace),
            self.storage_warning_fraction,
            timedelta(seconds=self.storage_sample_max_age),
        )


__all__ = ["StorageSettings"]
