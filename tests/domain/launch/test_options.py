"""The one options schema: form, query string and REST shapes, and every field error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eohub.domain.identity.groups import valid_group_name
from eohub.domain.launch.options import (
    FIELDS,
    MAX_VOLUMES,
    NAME,
    LaunchRequest,
    OptionsError,
    form_to_options,
    parse_options,
    urlpath_problem,
)


@pytest.mark.parametrize(
    ("formdata", "expected"),
    [
        ({}, {}),
        ({"environment": ["pangeo"], "_xsrf": ["token"]}, {"environment": "pangeo"}),
        ({"environment": [""], "size": [""], "urlpath": [""]}, {}),
        ({"volumes": ["common-data"]}, {"volumes": ["common-data"]}),
        ({"volumes": ["a", "", "b"]}, {"volumes": ["a", "b"]}),
        ({"volumes": [""]}, {}),
        ({"size": ["small", "large"]}, {"size": ["small", "large"]}),  # the parser reports it
        ({"size": ["", "large"]}, {"size": "large"}),
        ({"image": ["evil/image"]}, {"image": "evil/image"}),  # passed on to be reported
        ({"group": [b"climate"]}, {"group": "climate"}),
        ({"group": "climate"}, {"group": "climate"}),
    ],
)
def test_form_to_options(formdata: dict[str, Any], expected: dict[str, object]) -> None:
    assert form_to_options(formdata) == expected


# The same launch, as the form, a query string and a REST client send it.
SAME_LAUNCH = [
    form_to_options(
        {
            "_xsrf": ["x"],
            "environment": ["pangeo"],
            "size": ["small"],
            "group": ["vo.example.org:climate"],
            "volumes": ["common-data", "scratch"],
            "urlpath": ["/lab/tree/work/a%20b.ipynb"],
        }
    ),
    form_to_options(
        {
            "environment": ["pangeo"],
            "size": ["small"],
            "group": ["vo.example.org:climate"],
            "volumes": ["common-data", "scratch"],
            "urlpath": ["/lab/tree/work/a%20b.ipynb"],
        }
    ),
    {
        "environment": "pangeo",
        "size": "small",
        "group": "vo.example.org:climate",
        "volumes": ["common-data", "scratch"],
        "urlpath": "/lab/tree/work/a%20b.ipynb",
    },
]


@pytest.mark.parametrize("raw", SAME_LAUNCH, ids=["form", "query", "rest"])
def test_every_path_parses_to_the_same_request(raw: dict[str, object]) -> None:
    assert parse_options(raw) == LaunchRequest(
        environment="pangeo",
        size="small",
        group="vo.example.org:climate",
        volumes=("common-data", "scratch"),
        urlpath="/lab/tree/work/a%20b.ipynb",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, LaunchRequest()),
        ({"environment": None, "size": "", "urlpath": None}, LaunchRequest()),
        ({"volumes": []}, LaunchRequest(volumes=())),
        ({"volumes": ("a",)}, LaunchRequest(volumes=("a",))),
        ({"group": "Climate Research"}, LaunchRequest(group="Climate Research")),
        ({"environment": "r-4.3_geo"}, LaunchRequest(environment="r-4.3_geo")),
    ],
)
def test_parse_options(raw: dict[str, object], expected: LaunchRequest) -> None:
    assert parse_options(raw) == expected


LONG = "a" * 64
ERRORS: list[tuple[str, object, dict[str, str]]] = [
    ("not an object", ["environment"], {"user_options": "must be an object, not a list"}),
    ("unknown key", {"image": "evil/x"}, {"image": "is not a launch option"}),
    ("repo list", {"repo": ["x"], "ref": 3}, {"repo": "not a list", "ref": "not a number"}),
    ("repo with a space", {"repo": "https://x.org/a b"}, {"repo": "must not contain spaces"}),
    ("ref with a newline", {"ref": "main\nx"}, {"ref": "control characters"}),
    ("ref too long", {"ref": "r" * 256}, {"ref": "at most 255"}),
    ("provider", {"provider": "GH"}, {"provider": "a provider key"}),
    ("filepath absolute", {"filepath": "/etc/passwd"}, {"filepath": "inside the repository"}),
    ("filepath climbs", {"filepath": "a/../../b"}, {"filepath": "'..'"}),
    ("filepath encoded", {"filepath": "a/%2e%2e/b"}, {"filepath": "'..'"}),
    # Inside a name too: the start page it becomes refuses any '..' (hypothesis found
    # '0..', which the file rule let through and the start-page rule then refused).
    ("filepath dots in a name", {"filepath": "notes..ipynb"}, {"filepath": "'..'"}),
    ("filepath hidden", {"filepath": "a\u202eb"}, {"filepath": "control characters"}),
    ("key that is not text", {5: "x"}, {"5": "is not a launch option"}),
    ("a huge key", {"k" * 1000: 1}, {"'" + "k" * 59 + "...'": "is not a launch option"}),
    ("server_name is the hub's", {"server_name": "gpu"}, {"server_name": "is not"}),
    ("environment list", {"environment": ["a", "b"]}, {"environment": "not a list"}),
    ("environment number", {"environment": 3}, {"environment": "not a number"}),
    ("environment object", {"environment": {"a": 1}}, {"environment": "not an object"}),
    ("environment boolean", {"environment": True}, {"environment": "not a boolean"}),
    ("environment case", {"environment": "Pangeo"}, {"environment": "lowercase"}),
    ("environment long", {"environment": LONG}, {"environment": "1 to 63"}),
    ("environment control", {"environment": "a\x00"}, {"environment": "lowercase"}),
    ("environment leading dot", {"environment": ".x"}, {"environment": "starting with"}),
    ("size path", {"size": "../x"}, {"size": "lowercase"}),
    ("group long", {"group": "g" * 256}, {"group": "1 to 255"}),
    ("group control", {"group": "a\nb"}, {"group": "control characters"}),
    ("group padded", {"group": " a"}, {"group": "group name"}),
    ("group list", {"group": ["a"]}, {"group": "not a list"}),
    ("volumes text", {"volumes": "common-data"}, {"volumes": "must be a list"}),
    ("volumes object", {"volumes": {"a": True}}, {"volumes": "not an object"}),
    ("volumes twice", {"volumes": ["a", "a"]}, {"volumes": "names volume 'a' twice"}),
    ("volume item", {"volumes": ["a", 5]}, {"volumes": "item 1: must be a string"}),
    ("volume name", {"volumes": ["A"]}, {"volumes": "item 0: must be 1 to 63"}),
    ("volumes many", {"volumes": [f"v{i}" for i in range(65)]}, {"volumes": "at most 64"}),
    ("urlpath number", {"urlpath": 1}, {"urlpath": "must be a string"}),
    ("urlpath relative", {"urlpath": "lab"}, {"urlpath": "must start with '/'"}),
    ("urlpath long", {"urlpath": "/" + "a" * 1024}, {"urlpath": "at most 1024"}),
    ("every field at once", {"environment": 1, "size": 2}, {"environment": "", "size": ""}),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_option_errors_name_every_field(raw: Any, expected: dict[str, str]) -> None:
    with pytest.raises(OptionsError) as info:
        parse_options(raw)
    assert set(info.value.errors) == set(expected)
    for field, fragment in expected.items():
        assert fragment in info.value.errors[field]


def test_unknown_keys_are_reported_up_to_a_limit() -> None:
    with pytest.raises(OptionsError) as info:
        parse_options({f"k{i}": 1 for i in range(1000)} | {"size": 5})
    assert len(info.value.errors) == 21
    assert "size" in info.value.errors


def test_an_options_error_is_a_value_error_listing_the_fields() -> None:
    error = OptionsError({"size": "is bad", "group": "is worse"})
    assert isinstance(error, ValueError)
    assert str(error) == "size: is bad; group: is worse"


def test_the_allowed_options_are_one_table() -> None:
    assert list(FIELDS) == [
        "environment",
        "size",
        "group",
        "volumes",
        "urlpath",
        "provider",
        "repo",
        "ref",
        "filepath",
    ]
    assert [f for f, field in FIELDS.items() if field.multiple] == ["volumes"]


@pytest.mark.parametrize(
    "path",
    [
        "/lab",
        "/lab/",
        "/rstudio/",
        "/vscode",
        "/lab/tree/work/notebook.ipynb",
        "/lab/tree/a%20b.ipynb",
        "/lab?reset",
        "/voila/render/app.ipynb?voila-theme=dark&x=1",
        "/lab/tree/a.b/c",
        "/user-redirect/lab",
    ],
)
def test_good_start_pages(path: str) -> None:
    assert urlpath_problem(path) is None
    assert parse_options({"urlpath": path}).urlpath == path


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("lab", "must start with '/'"),
        ("?next=/hub", "must start with '/'"),
        ("https://evil.example.org", "must start with '/'"),
        ("//evil.example.org", "'//'"),
        ("/\\evil.example.org", "'//'"),
        ("/%2F%2Fevil.example.org", "'//'"),
        ("/%5Cevil", "'//'"),
        ("/../hub/admin", "'..'"),
        ("/lab/../../hub/admin", "'..'"),
        ("/%2e%2e/hub/admin", "'..'"),
        ("/lab/%2E%2E/%2E%2E/hub", "'..'"),
        ("/javascript:alert(1)", "scheme"),
        ("/%6aavascript:alert(1)", "scheme"),
        ("/lab\n", "control"),
        ("/lab%0d%0aSet-Cookie:x", "control"),
        ("/lab\x00", "control"),
        ("/lab\u0085", "control"),
        ("/lab tree", "may contain only"),
        ('/lab"><script>', "may contain only"),
        ("/lab#fragment", "may contain only"),
        ("/" + "a" * 1024, "at most 1024"),
    ],
)
def test_bad_start_pages(path: str, fragment: str) -> None:
    problem = urlpath_problem(path)
    assert problem is not None
    assert fragment in problem
    with pytest.raises(OptionsError, match="urlpath"):
        parse_options({"urlpath": path})


NAMES = st.from_regex(NAME, fullmatch=True)
REQUESTS = st.builds(
    LaunchRequest,
    environment=st.none() | NAMES,
    size=st.none() | NAMES,
    group=st.none() | st.text(min_size=1, max_size=255).filter(valid_group_name),
    volumes=st.none() | st.lists(NAMES, max_size=5, unique=True).map(tuple),
    urlpath=st.none() | st.sampled_from(["/lab", "/rstudio/", "/lab/tree/x.ipynb?reset"]),
)


@settings(max_examples=300, deadline=None)
@given(REQUESTS)
def test_stored_options_parse_back_to_the_same_request(request: LaunchRequest) -> None:
    assert parse_options(request.to_user_options()) == request


def attempt(raw: object) -> LaunchRequest | OptionsError:
    try:
        return parse_options(raw)  # type: ignore[arg-type]
    except OptionsError as e:
        return e


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from([*FIELDS, "repo", "_xsrf"]) | st.text(), JSONISH))
def test_any_raw_options_parse_or_fail_with_field_errors(raw: dict[str, object]) -> None:
    result = attempt(raw)
    if isinstance(result, OptionsError):
        assert result.errors
    else:
        assert set(result.to_user_options()) <= set(FIELDS)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.lists(st.text(max_size=20), max_size=3)))
def test_any_form_parses_or_fails_with_field_errors(formdata: dict[str, list[str]]) -> None:
    result = attempt(form_to_options(formdata))
    assert isinstance(result, LaunchRequest) or result.errors


def test_volumes_limit_is_generous() -> None:
    names = [f"v{i}" for i in range(MAX_VOLUMES)]
    assert parse_options({"volumes": names}).volumes == tuple(names)
