"""Open XDMoD exports: Slurm ``sacct`` job records for the Jobs realm.

XDMoD has no JupyterHub input. It does ingest Slurm accounting, so each stopped session
becomes one Slurm allocation line. The admin shreds the file with::

    xdmod-shredder -r <resource> -f slurm -i sessions.log && xdmod-ingestor

The rules below are what XDMoD's Slurm shredder checks. We learnt them from
``classes/OpenXdmod/Shredder/Slurm.php``, its base class ``classes/OpenXdmod/Shredder.php``,
``classes/Xdmod/SlurmResourceParser.php``, the ``shredded_job_slurm`` table and the docs
``resource-manager-slurm.md``, ``howto-reconstruct-slurm.md`` and ``gpu-metrics.md``. All
of these are in https://github.com/ubccr/xdmod.

- Input is ``sacct --parsable2 --noheader --allocations`` output with the 26 fields of
  :data:`SACCT_FIELDS`, in that order. The shredder splits a line on ``|`` into at most 26
  parts. Fewer parts abort the whole file, because the file is one database transaction.
  More parts all end up in ``jobname``. So only ``jobname`` could hold a ``|``, and we put
  one in no field at all.
- Before it splits, the shredder strips trailing whitespace and deletes control
  characters ``\\x00-\\x1f`` and ``\\x7f``. A newline inside a field would split the
  record in two.
- Lines that are skipped: a ``jobid`` containing ``.`` (a job step); an ``end`` of
  ``Unknown``; a ``nodelist`` of ``None assigned``; a state whose first word is not an
  ended state (:data:`ENDED_STATES`; ``CANCELLED by 0`` counts as ``CANCELLED``).
- A ``jobid`` containing ``_`` is read as an array job (``123_4``, ``123_[1-3]``). Job ids
  are ``int(10) unsigned`` columns, so they must be whole numbers from 1 to 2**32 - 1.
- ``submit``, ``eligible``, ``start`` and ``end`` are parsed with PHP's ``Y-m-d?H:i:s``:
  ``2026-01-31T12:00:00``. Fractions and offsets are rejected. The result is always read
  as UTC (the docs say "The shredder will assume input times are in UTC regardless of
  your system time zone"). There is no XDMoD time zone setting to match, so we write UTC.
- ``elapsed`` and ``timelimit`` must match ``[[DD-]HH:]MM:SS[.ff]``. ``UNLIMITED``, an
  empty string or anything else that does not match is stored as NULL. That is allowed
  for ``timelimit``, so ``UNLIMITED`` is accepted. The wall time XDMoD reports is
  ``end - start``, not ``elapsed``.
- Job data errors: a zero start or end, a start after the end, a zero ``nnodes`` or
  ``ncpus``, or ``nnodes > ncpus``. CPU hours are ``ncpus`` times the wall time, so
  ``ncpus`` must be a positive whole number.
- ``reqmem`` is stored as text, in a ``varchar(32)``. Slurm writes it as a number with a
  unit, like ``4096M``. Before 21.08, Slurm added ``n`` (per node) or ``c`` (per CPU).
- The GPU count comes only from ``alloctres``. The shredder splits it on ``,``, then each
  item on the first ``=``. The first item named exactly ``gres/gpu`` gives the count, read
  as an integer. With no such item, the job has 0 GPUs. ``reqtres`` is stored but not read.
- ``cluster`` is replaced by the ``-r`` resource name. ``pi_name`` is taken from ``group``
  unless the resource sets ``pi_column``. A repeated (resource, job id, submit, end) row
  is a duplicate key, and the shredder skips it. Shredding the same export twice
  therefore adds nothing.

How a session becomes a job is described in :func:`sacct_fields` and
:class:`SacctOptions`. XDMoD's Storage realm ingests JSON instead: see
:mod:`eohub.domain.reports.xdmod_storage`.

Why a session stopped (its ``end_reason``,
:mod:`eohub.domain.accounting.stop_reasons`) gives the job's ``state`` and ``exitcode``;
every state is one the shredder ingests (:data:`ENDED_STATES`):

=================================================  ============  ==========
``end_reason``                                     ``state``     ``exitcode``
=================================================  ============  ==========
``user``, ``stopped``, ``reconcile``, ``unknown``  COMPLETED     0:0
``admin``, ``shutdown``, ``budget``                CANCELLED     0:0
``idle``, ``max_duration``                         TIMEOUT       0:0
``failed``                                         FAILED        1:0
=================================================  ============  ==========

Reasons earlier versions wrote are read by their new names (``quota`` as ``budget``,
``culled`` as ``idle``, ``reconciled`` as ``reconcile``); an empty or unknown reason is
COMPLETED. ``TIMEOUT`` is Slurm's "reached its time limit": an idle stop is a limit on
inactivity. A session with a maximum duration has it as its ``timelimit``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from eohub.domain.accounting.ledger import MIB
from eohub.domain.accounting.periods import ensure_utc
from eohub.domain.accounting.session_record import SessionFields
from eohub.domain.accounting.stop_reasons import FAILED, normalise, xdmod_state

#: The ``sacct --format`` fields XDMoD's Slurm shredder reads, in its order.
SACCT_FIELDS: tuple[str, ...] = (
    "jobid",
    "jobidraw",
    "cluster",
    "partition",
    "qos",
    "account",
    "group",
    "gid",
    "user",
    "uid",
    "submit",
    "eligible",
    "start",
    "end",
    "elapsed",
    "exitcode",
    "state",
    "nnodes",
    "ncpus",
    "reqcpus",
    "reqmem",
    "reqtres",
    "alloctres",
    "timelimit",
    "nodelist",
    "jobname",
)

#: Job states the shredder ingests; every other state is skipped.
ENDED_STATES: tuple[str, ...] = (
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "NODE_FAIL",
    "PREEMPTED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "DEADLINE",
    "REVOKED",
)

MAX_UINT = 2**32 - 1  # int(10) unsigned: job ids, uids and gids
MAX_JOB_ID = MAX_UINT
MAX_TEXT = 255  # tinytext / varchar(255)
#: User, group and account names, in this export and the storage export alike. The Slurm
#: shredder stores them in tinytext (255), but XDMoD's storage schema
#: (``etl_schemas.d/storage/usage.schema.json``) allows ``user`` and ``pi`` 30 characters
#: at most, and XDMoD joins its realms on the user name as written: a name cut (with its
#: hash, see :func:`xdmod_text`) only in the storage export would be another person.
MAX_NAME = 30

# Structural values the shredder parses further: a node list is split on "," and "[".
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DURATION = re.compile(r"^(?:[0-9]+-)?[0-9]{2}:[0-9]{2}:[0-9]{2}$")
_PLAIN = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"|", "%"}


def xdmod_text(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` as printable ASCII that fits XDMoD's columns and cannot break a line.

    Parameters
    ----------
    value
        Any text: a user, group, profile or server name.
    limit
        The longest result allowed, in characters (and so in bytes).

    Returns
    -------
    str
        Printable ASCII other than ``|`` and ``%`` is kept. Every other character is
        percent-encoded as UTF-8, and so is ``%`` itself, so that different names never
        come out the same (``zoë`` becomes ``zo%C3%AB``, and a newline becomes ``%0A``).
        Trailing spaces are encoded too (``%20``), because the shredder strips them.
        XDMoD's tables are latin1, and a character they cannot hold would fail the whole
        import, which is one transaction. Text longer than ``limit`` is cut and ends with
        ``~`` plus 8 hex digits of its SHA-256, so long names stay distinct.
    """
    if limit < 16:
        raise ValueError("limit must leave room for the hash suffix")
    encoded = "".join(ch if ch in _PLAIN else _escape(ch) for ch in value)
    # The shredder strips trailing whitespace from a line, which would eat the end of the
    # last field; escaping trailing spaces in every field keeps them all alike.
    kept = encoded.rstrip(" ")
    encoded = kept + "%20" * (len(encoded) - len(kept))
    if len(encoded) <= limit:
        return encoded
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    head = encoded[: limit - 9]
    # An escape cut in half ("%C" of "%C3") would read as a different name.
    partial = head.find("%", len(head) - 2)
    if partial != -1:
        head = head[:partial]
    return f"{head}~{digest}"


def _escape(ch: str) -> str:
    return "".join(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))


def pseudo_id(name: str) -> int:
    """A stable number for ``name`` in ``[0, 2**31)``: the uid/gid when none is known.

    It is not a POSIX id, and two names may share one. XDMoD keys people by name and only
    stores the number, so that does no harm.
    """
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def slurm_time(t: datetime) -> str:
    """``t`` in UTC as Slurm prints it, ``YYYY-MM-DDTHH:MM:SS``; a naive ``t`` is UTC."""
    return ensure_utc(t).strftime("%Y-%m-%dT%H:%M:%S")


def slurm_duration(seconds: int) -> str:
    """Whole seconds as Slurm prints a duration: ``HH:MM:SS``, or ``D-HH:MM:SS``."""
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def whole_cpus(millicores: int) -> int:
    """The CPU count XDMoD sees: millicores rounded up to whole CPUs, at least 1."""
    return max(1, -(-millicores // 1000))


def memory_mib(memory_bytes: int) -> int:
    """Memory in whole MiB (Slurm's ``M``), rounded up so that no memory never reads as 0."""
    return -(-memory_bytes // MIB)


@dataclass(frozen=True)
class SacctOptions:
    """How sessions are mapped onto Slurm fields. Validated once, for a whole export.

    Parameters
    ----------
    cluster
        The ``cluster`` field. The shredder replaces it with its ``-r`` resource, so use
        that resource's name to keep the file self-describing.
    node
        The ``nodelist`` of every job: one host name, no commas or brackets.
    partition
        The partition of sessions without a profile. A session's profile is its
        partition, so XDMoD's "queue" dimension shows the environments people use.
    qos
        The ``qos`` field.
    timelimit
        ``UNLIMITED`` (stored as NULL by XDMoD) or a Slurm duration ``[D-]HH:MM:SS``.
    job_id_offset
        Added to the session id to give the job id. Set it so that the ids of two hubs
        that export to one XDMoD resource never meet. The job id is
        ``session.id + job_id_offset``. It must stay within 1..2**32-1.
    uids, gids
        The numeric ids of users and groups, for example from LDAP. A name not found here
        gets :func:`pseudo_id`.
    """

    cluster: str = "eohub"
    node: str = "jupyter"
    partition: str = "default"
    qos: str = "normal"
    timelimit: str = "UNLIMITED"
    job_id_offset: int = 0
    uids: Mapping[str, int] = field(default_factory=dict)
    gids: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("cluster", "node"):
            if not NODE_NAME.match(getattr(self, name)):
                raise ValueError(
                    f"SacctOptions.{name} must be letters, digits, '.', '_' or '-' "
                    "(at most 63), starting with a letter or digit"
                )
        if self.timelimit != "UNLIMITED" and not _DURATION.match(self.timelimit):
            raise ValueError("SacctOptions.timelimit must be UNLIMITED or [D-]HH:MM:SS")
        if not 0 <= self.job_id_offset < MAX_JOB_ID:
            raise ValueError(f"SacctOptions.job_id_offset must be in 0..{MAX_JOB_ID - 1}")
        for label, ids in (("uids", self.uids), ("gids", self.gids)):
            for key, number in ids.items():
                if not 0 <= number <= MAX_UINT:
                    raise ValueError(f"SacctOptions.{label}[{key!r}] must be in 0..{MAX_UINT}")


DEFAULT_SACCT_OPTIONS = SacctOptions()


def sacct_fields(
    record: SessionFields, options: SacctOptions = DEFAULT_SACCT_OPTIONS
) -> list[str]:
    """The 26 :data:`SACCT_FIELDS` of a stopped session, as strings.

    Parameters
    ----------
    record
        A stopped session. Start and stop may carry any time zone; a naive one is UTC.
    options
        The mapping choices; see :class:`SacctOptions`.

    Returns
    -------
    list[str]
        One job: ``jobid`` = ``jobidraw`` = ``record.id + job_id_offset``, so re-exports
        give the same ids. Account and group are the group charged. The user is the user.
        User, account and group names are cut at :data:`MAX_NAME` characters, as the
        storage export cuts them, so both realms name a person alike.
        Submit = eligible = start. Times are cut to whole seconds, in UTC. State and
        exit code follow the end reason (see the module docstring). One node.
        ``ncpus`` is the cores rounded up to whole CPUs (at least 1). XDMoD counts whole
        CPUs; the exact fractional core-hours are in our own reports and CSV. ``reqmem``
        and the TRES ``mem`` are in whole MiB (``M``). ``gres/gpu=N`` is written only
        when the session held GPUs. ``timelimit`` is the session's maximum duration when
        it had one, else ``options.timelimit``. ``jobname`` is the server name, or
        ``jupyter`` for the default server. Every free-text field goes through
        :func:`xdmod_text`.

    Raises
    ------
    ValueError
        If the session is still open, or its job id falls outside 1..2**32-1.
    """
    job_id, start, end = _job_span(record, options)
    cpus = whole_cpus(record.millicores)
    mem = memory_mib(record.memory_bytes)
    tres = _tres(cpus, mem, record.gpus)
    return [
        *_job_owner(record, options, job_id),
        slurm_time(start),
        slurm_time(start),
        slurm_time(start),
        slurm_time(end),
        slurm_duration(int((end - start).total_seconds())),
        exit_code(record.end_reason),
        xdmod_state(record.end_reason),
        "1",
        str(cpus),
        str(cpus),
        f"{mem}M",
        tres,
        tres,
        slurm_duration(record.max_duration) if record.max_duration else options.timelimit,
        options.node,
        xdmod_text(record.server or "jupyter"),
    ]


def exit_code(end_reason: str | None) -> str:
    """Slurm's ``exitcode`` (``code:signal``) of a session that stopped for ``end_reason``."""
    return "1:0" if end_reason and normalise(end_reason) == FAILED else "0:0"


def _job_span(record: SessionFields, options: SacctOptions) -> tuple[int, datetime, datetime]:
    """The job id, start and end of a stopped session, or the ValueError refusing it."""
    if record.stopped_at is None:
        raise ValueError(f"session {record.id} is still running; only stopped ones export")
    job_id = record.id + options.job_id_offset
    if not 1 <= job_id <= MAX_JOB_ID:
        raise ValueError(f"session {record.id} gives job id {job_id}, outside 1..{MAX_JOB_ID}")
    start = ensure_utc(record.started_at).replace(microsecond=0)
    # A stop recorded before its start (a clock step) is read as a zero-length job; XDMoD
    # would otherwise log a data error and invent a start time.
    end = max(start, ensure_utc(record.stopped_at).replace(microsecond=0))
    return job_id, start, end


def _job_owner(record: SessionFields, options: SacctOptions, job_id: int) -> list[str]:
    """The fields from ``jobid`` to ``uid``: the job, where it ran and who owned it."""
    group = xdmod_text(record.group, MAX_NAME)
    return [
        str(job_id),
        str(job_id),
        options.cluster,
        xdmod_text(record.profile or options.partition),
        xdmod_text(options.qos),
        group,
        group,
        str(options.gids.get(record.group, pseudo_id(record.group))),
        xdmod_text(record.user, MAX_NAME),
        str(options.uids.get(record.user, pseudo_id(record.user))),
    ]


def _tres(cpus: int, mem: int, gpus: int) -> str:
    """Trackable resources in sacct's order (by name), as Slurm prints them."""
    parts = [f"billing={cpus}", f"cpu={cpus}"]
    if gpus:
        parts.append(f"gres/gpu={gpus}")
    if mem:
        parts.append(f"mem={mem}M")
    parts.append("node=1")
    return ",".join(parts)


def sacct_line(record: SessionFields, options: SacctOptions = DEFAULT_SACCT_OPTIONS) -> str:
    """One ``sacct --parsable2`` line (no newline) for a stopped session.

    See :func:`sacct_fields` for the mapping and the errors.
    """
    return "|".join(sacct_fields(record, options))


def sacct_lines(
    records: Iterable[SessionFields], options: SacctOptions = DEFAULT_SACCT_OPTIONS
) -> Iterator[str]:
    """Lines for the stopped sessions in ``records``; open sessions are skipped.

    An open session has no end yet. A later export picks it up, with the same job id,
    once it stops.
    """
    for record in records:
        if record.stopped_at is not None:
            yield sacct_line(record, options)
