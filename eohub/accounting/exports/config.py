"""Export settings shared by the ``eohub-accounting export`` command and the export API."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from traitlets import Dict, Integer, TraitError, Unicode, validate
from traitlets.config import Configurable

from eohub.accounting.exports.parallel import SESSION_EXPORTS, export_in_parts, shareable
from eohub.accounting.exports.writers import (
    Progress,
    write_sacct,
    write_sessions_csv,
    write_storage_json,
    write_usage_csv,
)
from eohub.adapters.accounting_db.store import AccountingStore
from eohub.domain.accounting.periods import PeriodKind
from eohub.domain.reports.xdmod import SacctOptions, xdmod_text
from eohub.domain.reports.xdmod_storage import (
    MAX_STORAGE_NAME,
    UNASSIGNED_PI,
    XDMOD_NAME,
    StorageOptions,
    one_per_measurement,
)
from eohub.logs import get_logger

log = get_logger(__name__)

#: Export names, as the CLI's ``--kind`` and the API's file names know them.
EXPORTS = {
    "sessions.csv": "text/csv; charset=utf-8",
    "usage.csv": "text/csv; charset=utf-8",
    "sacct.txt": "text/plain; charset=us-ascii",
    "storage.json": "application/json",
}


class XDMoDExport(Configurable):
    """How sessions and storage samples map onto Open XDMoD's resources."""

    cluster = Unicode(
        "eohub",
        help="The Slurm ``cluster`` field, and the XDMoD resource name you shred with "
        "``xdmod-shredder -r``. Letters, digits, '.', '_' and '-'.",
    ).tag(config=True)
    node = Unicode("jupyter", help="The node name every job ran on (XDMoD counts one node).").tag(
        config=True
    )
    job_id_offset = Integer(
        0,
        help="Added to session ids to make job ids. Give each hub that exports to the same "
        "XDMoD resource its own range (e.g. 100000000), so ids never meet.",
    ).tag(config=True)
    uids = Dict(
        help="User name -> numeric uid for the sacct ``uid`` field (e.g. from LDAP). "
        "Others get a stable number derived from the name.",
    ).tag(config=True)
    gids = Dict(help="Group name -> numeric gid for the sacct ``gid`` field.").tag(config=True)
    storage_resource = Unicode(
        "eohub-home", help="The XDMoD storage resource that storage samples belong to."
    ).tag(config=True)
    storage_mountpoint = Unicode(
        "/home", help="The file system the storage samples measure, as users see it."
    ).tag(config=True)
    storage_unassigned_pi = Unicode(
        UNASSIGNED_PI,
        help="The XDMoD PI of storage samples charged to no group (XDMoD requires one); "
        "their space still shows under each user. Letters, digits, '.', '_' and '-', at "
        "most 30. It must not be a group's name: XDMoD would add that group's space and "
        "the unassigned space up as one PI's (the service and the export log a warning).",
    ).tag(config=True)

    export_workers = Integer(
        0,
        help="Processes that write a large sessions.csv or sacct.txt export together. 0 "
        "means one per CPU, at most 8; 1 writes every export in the calling process. Each "
        "worker holds one more database connection while it runs.",
    ).tag(config=True)
    parallel_export_sessions = Integer(
        200_000,
        help="Exports of at least this many sessions are written by ``export_workers`` "
        "processes; smaller ones are quicker in one process, since starting a worker "
        "takes about a second.",
    ).tag(config=True)

    @validate("export_workers", "parallel_export_sessions")
    def _validate_not_negative(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if value < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 or more, not {value}")
        return value

    @validate("storage_unassigned_pi")
    def _validate_unassigned_pi(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"])
        if not XDMOD_NAME.match(value):
            raise TraitError(
                f"storage_unassigned_pi must be letters, digits, '.', '_' or '-' (at most "
                f"30), starting with a letter or digit, not {value!r}"
            )
        return value

    def workers(self) -> int:
        """The worker processes to use; 1 means none."""
        return self.export_workers or min(8, os.cpu_count() or 1)

    def sacct_options(self) -> SacctOptions:
        return SacctOptions(
            cluster=self.cluster,
            node=self.node,
            job_id_offset=self.job_id_offset,
            uids=dict(self.uids),
            gids=dict(self.gids),
        )

    def storage_options(self, store: AccountingStore) -> StorageOptions:
        groups = store.groups()
        warn_about_the_unassigned_pi((g.name for g in groups), self.storage_unassigned_pi)
        thresholds = {
            g.name: limits.storage_bytes
            for g in groups
            for owner, limits in g.quotas.items()
            if owner == ""
        }
        return StorageOptions(
            resource=self.storage_resource,
            mountpoint=self.storage_mountpoint,
            hard_thresholds=thresholds,
            unassigned_pi=self.storage_unassigned_pi,
        )


def warn_about_the_unassigned_pi(groups: Iterable[str], unassigned_pi: str) -> bool:
    """Log a warning when a group is exported under the PI of samples charged to no
    group (``storage_unassigned_pi``); True if one is."""
    clashes = sorted(g for g in groups if xdmod_text(g, MAX_STORAGE_NAME) == unassigned_pi)
    if clashes:
        log.warning(
            "XDMoDExport.storage_unassigned_pi {pi!r} is also the XDMoD PI of group(s) "
            "{groups}: the storage export mixes their space with the space charged to no "
            "group. Set storage_unassigned_pi to a name no group has.",
            pi=unassigned_pi,
            groups=", ".join(clashes),
        )
    return bool(clashes)


def warn_if_unassigned_pi_is_a_group(store: AccountingStore, unassigned_pi: str) -> bool:
    """:func:`warn_about_the_unassigned_pi` for the groups ``store`` defines (start-up)."""
    return warn_about_the_unassigned_pi((g.name for g in store.groups()), unassigned_pi)


def run_export(
    kind: str,
    store: AccountingStore,
    settings: XDMoDExport,
    out: TextIO,
    start: datetime,
    end: datetime,
    *,
    group: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the ``kind`` export of ``[start, end)`` to ``out``; return the rows written.

    Sessions exports hold the sessions *started* in the range; the XDMoD job export
    holds the sessions *stopped* in it (as ``sacct`` selects finished jobs), so export
    consecutive ranges and every job appears exactly once.

    ``group`` limits every kind of export to that group's rows (the API passes the one
    group a PI may export; see :mod:`eohub.domain.accounting.access`).
    """
    if kind in SESSION_EXPORTS:
        ended = kind == "sacct.txt"
        total = store.count_sessions(start, end, group=group, ended=ended)
        now = store.clock().astimezone(UTC).replace(tzinfo=None)  # the rows' times are naive UTC
        sacct = settings.sacct_options() if ended else None
        workers = settings.workers()
        if workers > 1 and total >= settings.parallel_export_sessions and shareable(store.engine):
            return export_in_parts(
                kind,
                store,
                out,
                start,
                end,
                group=group,
                now=now,
                sacct=sacct,
                workers=workers,
                # Parts of some 50k sessions keep the progress moving and the workers
                # evenly busy.
                parts=max(workers, total // 50_000),
                total=total,
                progress=progress,
            )
        records = store.iter_session_rows(start, end, group=group, ended=ended)
        if sacct is not None:
            return write_sacct(records, out, total=total, progress=progress, options=sacct)
        return write_sessions_csv(records, out, now=now, total=total, progress=progress)
    if kind == "usage.csv":
        rows = store.usage(
            PeriodKind.MONTH, start, end, groups={group} if group else None, by_user=True
        )
        return write_usage_csv(rows, out, total=len(rows), progress=progress)
    if kind == "storage.json":
        options = settings.storage_options(store)
        # Samples carry the group they are charged to: a group's export holds only those.
        samples = (s for s in store.iter_storage(start, end) if group is None or s.group == group)
        # One entry per user, group and time: a round's sources are one measurement.
        merged = one_per_measurement(samples)
        return write_storage_json(merged, out, options=options, progress=progress)
    raise ValueError(f"unknown export {kind!r}: choose one of {', '.join(EXPORTS)}")
