"""Field errors: one message listing every field, rebuilt intact after pickling."""

from __future__ import annotations

import pickle

import pytest

from eohub.domain.accounting.events import EventError
from eohub.domain.fields import FieldErrors, describe
from eohub.domain.launch.options import OptionsError
from eohub.domain.repos.specs import RepoError


def test_errors_are_a_copy_and_the_message_lists_each_field() -> None:
    given = {"cpu": "must be a number", "events[3].group": "is required"}
    error = FieldErrors(given)
    given["extra"] = "added later"
    assert error.errors == {"cpu": "must be a number", "events[3].group": "is required"}
    assert str(error) == "cpu: must be a number; events[3].group: is required"
    assert isinstance(error, ValueError)


def test_no_errors_make_an_empty_message() -> None:
    assert str(FieldErrors({})) == ""


@pytest.mark.parametrize(
    "error",
    [
        FieldErrors({"a": "bad", "b": "worse"}),
        OptionsError({"size": "is not offered", "environment": "is required"}),
        EventError({"events[0].cpu": "must be above 0"}),
        RepoError("ref", "is not a valid git ref"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling(error: FieldErrors) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert type(copy) is type(error)
    assert copy.errors == error.errors
    assert str(copy) == str(error)
    assert isinstance(copy, FieldErrors)


def test_a_repo_error_keeps_its_field_through_pickling() -> None:
    copy = pickle.loads(pickle.dumps(RepoError("repo", "is not allowed here")))  # noqa: S301 (our own bytes)
    assert copy.field == "repo"
    assert copy.errors == {"repo": "is not allowed here"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pangeo", "'pangeo'"),
        (4, "4"),
        (None, "None"),
        ([1, "a"], "[1, 'a']"),
        ("x" * 64, repr("x" * 64)),  # 66 characters with the quotes: kept whole
        ("x" * 65, "'" + "x" * 59 + "...'"),
        (list(range(30)), repr(list(range(30)))[:60] + "..."),
    ],
)
def test_describe(value: object, expected: str) -> None:
    assert describe(value) == expected


def test_describe_never_echoes_a_huge_input() -> None:
    assert len(describe("a" * 10**6)) == 64
    assert len(describe(list(range(10**4)))) == 63
