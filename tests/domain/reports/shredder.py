"""A checker that reads sacct lines as XDMoD's Slurm shredder does, and what it stores.

It re-implements, independently of the code under test, the rules of XDMoD's Slurm
shredder (``classes/OpenXdmod/Shredder/Slurm.php`` and its base class in ubccr/xdmod).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from eohub.domain.reports.xdmod import SACCT_FIELDS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ---------------------------------------------------------------------------------------
# The checker: what the shredder accepts, and what it stores.

ENDED = {
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
}
COLUMNS = 26
DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2}).(\d{2}):(\d{2}):(\d{2})$")
TIME_FIELD = re.compile(r"^(?:(?:(\d+)-)?(\d+):)?(\d+):(\d+)(?:\.\d+)?$")
REQMEM = re.compile(r"^(\d+)([KMGT])[nc]?$")
TRES_ITEM = re.compile(r"^[a-z]+(?:/[a-z0-9_:]+)?=\d+[KMGT]?$")


@dataclass
class Shredded:
    job_id: int
    user: str
    group: str
    account: str
    partition: str
    start: int
    end: int
    submit: int
    elapsed: int | None
    timelimit: int | None
    ncpus: int
    nnodes: int
    gpus: int
    req_mem_mib: int
    job_name: str
    state: str
    exit_code: str


def epoch(text: str) -> int:
    match = DATETIME.match(text)
    assert match, f"the shredder cannot parse the datetime {text!r}"
    year, month, day, hour, minute, second = map(int, match.groups())
    parsed = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return (parsed - EPOCH) // timedelta(seconds=1)


def seconds(text: str) -> int | None:
    if text == "" or text.upper() == "UNLIMITED":
        return None
    match = TIME_FIELD.match(text)
    if not match:
        return None
    days, hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def tres_gpus(tres: str) -> int:
    # The first item named exactly gres/gpu, split on the first "=", read as an int.
    for item in tres.split(","):
        name, _, count = item.partition("=")
        if name == "gres/gpu" and "=" in item:
            return int(count)
    return 0


def shred(line: str) -> Shredded:
    """Read one line as XDMoD's Slurm shredder does, failing where it would fail."""
    job = _split_line(line)
    submit, start, end, elapsed, timelimit = _job_times(job)
    nnodes, ncpus, mem_mib = _job_sizes(job)
    for key in ("user", "group", "account", "partition", "jobname", "qos", "cluster"):
        assert 0 < len(job[key]) <= 255, f"{key} must fit a tinytext"
    return Shredded(
        job_id=int(job["jobid"]),
        user=job["user"],
        group=job["group"],
        account=job["account"],
        partition=job["partition"],
        start=start,
        end=end,
        submit=submit,
        elapsed=elapsed,
        timelimit=timelimit,
        ncpus=ncpus,
        nnodes=nnodes,
        gpus=tres_gpus(job["alloctres"]),
        req_mem_mib=int(mem_mib),
        job_name=job["jobname"],
        state=job["state"],
        exit_code=job["exitcode"],
    )


def _split_line(line: str) -> dict[str, str]:
    assert not re.search(r"[\n\r]", line), "a newline splits the record"
    # The shredder deletes control characters before it splits; ours must have none, or
    # the stored text would differ from what we meant.
    assert not re.search(r"[\x00-\x1f\x7f]", line)
    assert line == line.rstrip(), "trailing whitespace is stripped"
    assert line.isascii(), "XDMoD's tables are latin1; we promise plain ASCII"
    fields = line.split("|", COLUMNS - 1)
    assert len(fields) == COLUMNS, "Malformed Slurm sacct line"
    assert line.count("|") == COLUMNS - 1, "a stray '|' would land in jobname"
    job = dict(zip(SACCT_FIELDS, fields, strict=True))

    assert "." not in job["jobid"], "a job step would be skipped"
    assert "_" not in job["jobid"], "an underscore means a job array"
    assert job["jobid"].isdigit()
    assert 1 <= int(job["jobid"]) <= 2**32 - 1
    assert job["jobidraw"] == job["jobid"]
    assert job["end"] != "Unknown"
    assert job["nodelist"] != "None assigned"
    assert not re.search(r"[,\[\]]", job["nodelist"]), "the shredder parses node sets"
    assert job["state"].upper().split(" ", 1)[0] in ENDED
    assert re.fullmatch(r"\d+:\d+", job["exitcode"])
    return job


def _job_times(job: dict[str, str]) -> tuple[int, int, int, int, int | None]:
    """submit, start, end, elapsed and the time limit (None: unlimited)."""
    submit, eligible, start, end = (epoch(job[k]) for k in ("submit", "eligible", "start", "end"))
    assert 0 < submit <= eligible <= start <= end < 2**32, "job times out of order"
    elapsed = seconds(job["elapsed"])
    assert elapsed is not None, f"elapsed {job['elapsed']!r} would be stored as NULL"
    assert elapsed == end - start
    timelimit = seconds(job["timelimit"])
    assert timelimit is not None or job["timelimit"].upper() == "UNLIMITED"
    return submit, start, end, elapsed, timelimit


def _job_sizes(job: dict[str, str]) -> tuple[int, int, Fraction]:
    """Nodes, CPUs and the requested memory in MiB."""
    nnodes, ncpus, reqcpus = int(job["nnodes"]), int(job["ncpus"]), int(job["reqcpus"])
    assert 1 <= nnodes <= ncpus, "node/CPU counts XDMoD logs as errors"
    assert reqcpus >= 1
    assert len(job["reqmem"]) <= 32, "req_mem is a varchar(32)"
    mem = REQMEM.match(job["reqmem"])
    assert mem, f"reqmem {job['reqmem']!r} has no unit Slurm would print"
    unit_mib = {
        "K": Fraction(1, 1024),
        "M": Fraction(1),
        "G": Fraction(1024),
        "T": Fraction(1024**2),
    }
    mem_mib = int(mem.group(1)) * unit_mib[mem.group(2)]
    for key in ("reqtres", "alloctres"):
        items = job[key].split(",")
        assert all(TRES_ITEM.match(item) for item in items), f"{key}: {job[key]!r}"
        assert dict(item.split("=", 1) for item in items)["cpu"] == job["ncpus"]
    return nnodes, ncpus, mem_mib
