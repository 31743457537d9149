"""XDMoD's Jobs and Storage realms name a person alike: the sacct export's user and the
storage export's user are the same text, long names included, so they join by user
name; space charged to no group goes to the unassigned PI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.ledger import GIB, Resources
from eohub.domain.accounting.session_record import SessionRecord, StorageSample
from eohub.domain.reports.xdmod import MAX_NAME, sacct_line
from eohub.domain.reports.xdmod_storage import StorageOptions, storage_record
from tests.domain.reports.shredder import shred
from tests.domain.reports.test_xdmod_storage import check_storage

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
OPTIONS = StorageOptions(resource="eohub-home", hard_thresholds={"climate": 10 * GIB})


def job(user: str, group: str = "climate") -> SessionRecord:
    return SessionRecord(
        id=7,
        user=user,
        server="",
        group=group,
        resources=Resources.from_cpu(2, 4 * GIB, 0),
        started_at=T0,
        stopped_at=T0 + timedelta(hours=1),
        end_reason="stopped",
    )


NAMES = [
    "alice",
    "a" * MAX_NAME,  # exactly fits
    "a" * (MAX_NAME + 1),  # one past: cut with a hash
    "firstname.lastname@example-university.ac.uk",  # an OIDC name, 43 characters
    "zoë-" + "x" * 26,  # fits in characters, not once encoded
    "user|with%odd characters and a long tail ",
]


@pytest.mark.parametrize("user", NAMES)
def test_a_user_is_named_alike_in_both_realms(user: str) -> None:
    shredded = shred(sacct_line(job(user)))
    entry = storage_record(StorageSample(user, "climate", GIB, T0, 12), OPTIONS)
    check_storage(entry)
    assert shredded.user == entry["user"]
    assert len(entry["user"]) <= MAX_NAME
    # The Slurm shredder's PI is the group, as the storage record's is.
    assert shredded.group == shredded.account == entry["pi"]


def test_long_names_stay_distinct_in_both_realms() -> None:
    a, b = "a" * 40 + "1", "a" * 40 + "2"
    assert shred(sacct_line(job(a))).user != shred(sacct_line(job(b))).user
    assert (
        storage_record(StorageSample(a, "", 1, T0), OPTIONS)["user"]
        != storage_record(StorageSample(b, "", 1, T0), OPTIONS)["user"]
    )


def test_one_sacct_line_and_one_storage_record_join_by_user_name() -> None:
    """What XDMoD does with the two files, in small: each realm's rows by person."""
    user = "firstname.lastname@example-university.ac.uk"
    line = sacct_line(job(user))
    record = storage_record(StorageSample(user, "climate", 3 * GIB, T0, 1200), OPTIONS)
    jobs = {shredded.user: shredded for shredded in [shred(line)]}
    storage = {entry["user"]: entry for entry in [record]}
    joined = {name: (jobs[name], storage[name]) for name in jobs.keys() & storage.keys()}
    assert list(joined) == [record["user"]]
    (shredded, entry) = joined[record["user"]]
    assert shredded.job_id == 7
    assert (entry["logical_usage"], entry["file_count"], entry["pi"]) == (3 * GIB, 1200, "climate")


@pytest.mark.parametrize(
    ("options", "pi"),
    [
        (OPTIONS, "unassigned"),
        (StorageOptions(resource="r", unassigned_pi="no-group"), "no-group"),
    ],
)
def test_samples_without_a_group_go_to_the_unassigned_pi(options: StorageOptions, pi: str) -> None:
    entry = storage_record(StorageSample("alice", "", GIB, T0), options)
    check_storage(entry)
    assert (entry["user"], entry["pi"]) == ("alice", pi)
    assert "hard_threshold" not in entry


@pytest.mark.parametrize("pi", ["", "has space", "a" * 31, "-dash", "pi|x", "zoë"])
def test_the_unassigned_pi_must_be_an_xdmod_name(pi: str) -> None:
    with pytest.raises(ValueError, match="unassigned_pi"):
        StorageOptions(resource="r", unassigned_pi=pi)
