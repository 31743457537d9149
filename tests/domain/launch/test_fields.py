"""Reading one config entry field by field: values, defaults, and the key path of errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from eohub.domain.launch.fields import (
    MAX_DESCRIPTION,
    MAX_TEXT,
    Entry,
    LaunchConfigError,
    absolute_path_problem,
    check_name,
    sample,
    template_problem,
)

WHERE = "environments.pangeo"
KEYS = ("a", "b", "description")


def entry(**data: Any) -> Entry:
    return Entry(data, WHERE, (*KEYS, *data))


def refused(call: Any, where: str, fragment: str) -> None:
    with pytest.raises(LaunchConfigError) as caught:
        call()
    assert caught.value.where == where
    assert str(caught.value).startswith(f"{where}: ")
    assert fragment in str(caught.value), str(caught.value)


def test_an_entry_must_be_a_mapping_of_known_keys() -> None:
    refused(lambda: Entry(["a"], WHERE, KEYS), WHERE, "must be a mapping of settings, not ['a']")
    refused(
        lambda: Entry({"b": 1, "zz": 2, "c": 3}, WHERE, KEYS),
        WHERE,
        "unknown key 'c'; allowed keys: a, b, description",
    )
    assert Entry({"a": 1}, WHERE, KEYS).path("a") == f"{WHERE}.a"


def test_none_counts_as_not_given() -> None:
    e = entry(a=None)
    assert not e.has("a")
    assert not e.has("missing")
    assert entry(a=0).has("a")
    assert e.text("a", "dflt") == "dflt"
    assert e.flag("a", True) is True
    assert e.number("a", maximum=1) is None
    assert e.integer("a", minimum=0, maximum=1) is None
    assert e.byte_size("a") is None
    assert e.strings("a") == ()
    assert e.groups("a") == frozenset()
    assert e.string_map("a", re.compile(".*"), "keys") == {}
    assert e.template("a") is None
    assert e.absolute_path("a") == ""
    assert e.description() == ""
    refused(lambda: e.text("a", required=True), f"{WHERE}.a", "is required")
    refused(lambda: e.absolute_path("a", required=True), f"{WHERE}.a", "is required")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (3, "must be a string, not 3"),
        ("", f"must be 1 to {MAX_TEXT} characters"),
        ("x" * (MAX_TEXT + 1), "without control characters"),
        ("a\nb", "without control characters"),
        ("a\x7f", "without control characters"),
    ],
)
def test_bad_text(value: object, fragment: str) -> None:
    refused(lambda: entry(a=value).text("a"), f"{WHERE}.a", fragment)


def test_text_patterns_and_descriptions() -> None:
    assert entry(a="x" * MAX_TEXT).text("a") == "x" * MAX_TEXT
    pattern = re.compile(r"[a-z]+")
    assert entry(a="abc").text("a", pattern=pattern) == "abc"
    refused(lambda: entry(a="abc1").text("a", pattern=pattern), f"{WHERE}.a", "'abc1' is not")
    assert entry(description="Line one.\n\tTwo.").description() == "Line one.\n\tTwo."
    long = "x" * MAX_DESCRIPTION
    assert entry(description=long).description() == long
    refused(lambda: entry(description=long + "x").description(), f"{WHERE}.description", "4096")
    refused(lambda: entry(description="a\x00").description(), f"{WHERE}.description", "control")


def test_flags() -> None:
    assert entry(a=False).flag("a", True) is False
    refused(lambda: entry(a=1).flag("a", False), f"{WHERE}.a", "must be true or false, not 1")
    refused(lambda: entry(a="yes").flag("a", False), f"{WHERE}.a", "not 'yes'")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (0.5, 0.5), (8, 8.0), (True, "must be a number, not True"), ("1", "not '1'")]
    + [(v, "must be above 0 and at most 8") for v in (0, -1, 8.001, float("inf"), float("nan"))],
)
def test_numbers(value: object, expected: float | str) -> None:
    e = entry(a=value)
    if isinstance(expected, float):
        assert e.number("a", maximum=8) == expected
    else:
        refused(lambda: e.number("a", maximum=8), f"{WHERE}.a", expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (60, 60), (1.0, "whole number, not 1.0"), (False, "not False"), (61, "0 and 60")],
)
def test_integers(value: object, expected: int | str) -> None:
    e = entry(a=value)
    if isinstance(expected, int):
        assert e.integer("a", minimum=0, maximum=60) == expected
    else:
        refused(lambda: e.integer("a", minimum=0, maximum=60), f"{WHERE}.a", expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512Mi", 512 * 1024**2),
        (4294967296, 4 * 1024**3),
        (0, "must be above 0 bytes"),
        ("0G", "must be above 0 bytes"),
        ("5T", "must be between 0 and"),
        ("lots", "a size like 4G"),
    ],
)
def test_byte_sizes(value: object, expected: int | str) -> None:
    e = entry(a=value)
    if isinstance(expected, int):
        assert e.byte_size("a") == expected
    else:
        refused(lambda: e.byte_size("a"), f"{WHERE}.a", expected)


def test_lists_of_strings_and_groups() -> None:
    assert entry(a=["x", "y"]).strings("a") == ("x", "y")
    assert entry(a=("y", "x")).strings("a") == ("y", "x")
    refused(lambda: entry(a="x").strings("a"), f"{WHERE}.a", "must be a list, not 'x'")
    refused(lambda: entry(a=["x", ""]).strings("a"), f"{WHERE}.a[1]", "non-empty string")
    refused(lambda: entry(a=["x", 1]).strings("a"), f"{WHERE}.a[1]", "not 1")
    refused(lambda: entry(a=["x\n"]).strings("a"), f"{WHERE}.a[0]", "non-empty string")
    refused(lambda: entry(a=["x", "y", "x"]).strings("a"), f"{WHERE}.a[2]", "'x' is listed twice")
    assert entry(a=["vo.example.org:eo", "Climate"]).groups("a") == {
        "vo.example.org:eo",
        "Climate",
    }
    refused(lambda: entry(a=["ok", " padded"]).groups("a"), f"{WHERE}.a[1]", "not a valid group")


def test_string_maps() -> None:
    keys = re.compile(r"[A-Z_]+")
    assert entry(a={"A": "1", "B_C": ""}).string_map("a", keys, "names") == {"A": "1", "B_C": ""}
    refused(lambda: entry(a=["A"]).string_map("a", keys, "names"), f"{WHERE}.a", "names to str")
    refused(
        lambda: entry(a={"a": "1"}).string_map("a", keys, "names"), f"{WHERE}.a", "valid names"
    )
    refused(lambda: entry(a={"A": 1}).string_map("a", keys, "names"), f"{WHERE}.a.A", "not 1")
    refused(lambda: entry(a={"A": "\x00"}).string_map("a", keys, "n"), f"{WHERE}.a.A", "a string")
    big = "x" * 65537
    refused(lambda: entry(a={"A": big}).string_map("a", keys, "n"), f"{WHERE}.a.A", "a string")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("/srv/{username}", None),
        ("/srv/{group}/{username}", None),
        ("{{literal}}", None),
        ("plain", None),
        ("/srv/{home}", "may use only the placeholders {username} and {group}, not {home}"),
        ("{username.__class__}", "not {username.__class__}"),
        ("{username!r}", "not {username}"),
        ("{username:>9}", "not {username}"),
        ("{}", "not {}"),
        ("/srv/{username", "is not a valid template"),
        ("/srv/}", "write a literal brace as '{{' or '}}'"),
    ],
)
def test_template_problem(template: str, problem: str | None) -> None:
    found = template_problem(template)
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_templates_and_paths() -> None:
    assert sample("/srv/{group}/{username}") == "/srv/group/user"
    assert entry(a="/srv/{username}").template("a") == "/srv/{username}"
    refused(lambda: entry(a="{x}").template("a"), f"{WHERE}.a", "'{x}' may use only")
    assert entry(a="/home/{username}").absolute_path("a", template=True) == "/home/{username}"
    assert entry(a="/h/{x}").absolute_path("a") == "/h/{x}"  # not a template: braces as typed
    refused(lambda: entry(a="h/{username}").absolute_path("a", template=True), f"{WHERE}.a", "abs")
    refused(lambda: entry(a="/a/./b").absolute_path("a"), f"{WHERE}.a", "normalised: '/a/b'")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/", None),
        ("/data/common", None),
        ("data", "must be an absolute path"),
        ("/a\x00", "must not contain control characters"),
        ("/a/../b", "must not contain '..'"),
        ("/a/", "must be normalised: '/a'"),
        ("/a//b", "must be normalised: '/a/b'"),
        ("//a", None),  # POSIX keeps a leading double slash
    ],
)
def test_absolute_path_problem(path: str, problem: str | None) -> None:
    assert absolute_path_problem(path) == problem


def test_check_name() -> None:
    assert check_name("pangeo-2024.01", "environments", "environment") == "pangeo-2024.01"
    refused(lambda: check_name(1, "sizes", "size"), "sizes", "size names must be strings, not 1")
    refused(lambda: check_name("Big", "sizes", "size"), "sizes", "size name 'Big' must be 1 to 63")
