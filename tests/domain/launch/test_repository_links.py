"""Repository launches seen from outside: launch links, badges, and where a local launch
clones and what it opens."""

from __future__ import annotations

import dataclasses
import re
import string
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.launch.options import (
    OptionsError,
    filepath_problem,
    parse_options,
    urlpath_problem,
)
from eohub.domain.launch.repository import (
    LAUNCH_PREFIX,
    badges,
    clone_folder,
    launch_path,
    repo_urlpath,
)
from eohub.domain.repos.specs import RepoError, RepoProviders, RepoSpec, ref_problem
from tests.domain.launch.repository_fixtures import (
    COMMIT,
    ENTERPRISE,
    GH,
    GIT,
    GL,
    PROVIDERS,
    spec,
)

# --- launch links -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec_", "query", "expected"),
    [
        (GH, None, "eohub/launch/gh/org/repo/main"),
        (GH, {}, "eohub/launch/gh/org/repo/main"),
        (GH, {"urlpath": "", "environment": ""}, "eohub/launch/gh/org/repo/main"),
        (
            GH,
            {"urlpath": "/lab/tree/a b.ipynb", "environment": "", "size": "small"},
            "eohub/launch/gh/org/repo/main?urlpath=%2Flab%2Ftree%2Fa%20b.ipynb&size=small",
        ),
        (
            GH,
            {"filepath": "x?a=1&b=#c"},
            "eohub/launch/gh/org/repo/main?filepath=x%3Fa%3D1%26b%3D%23c",
        ),
        (
            dataclasses.replace(GH, ref="feature/x"),
            None,
            "eohub/launch/gh/org/repo/feature/x",
        ),
        (
            dataclasses.replace(GL, ref="feature/x"),
            None,
            "eohub/launch/gl/group%2Fsub%2Fproject/feature%2Fx",
        ),
        (
            GIT,
            {"environment": "binder"},
            "eohub/launch/git/https%3A%2F%2Fexample.org%2Fa%2Fb.git/main?environment=binder",
        ),
    ],
)
def test_launch_path(spec_: RepoSpec, query: dict[str, str] | None, expected: str) -> None:
    assert launch_path(PROVIDERS, spec_, query) == expected


def _link_round_trip(providers: RepoProviders, spec_: RepoSpec, query: dict[str, str]) -> None:
    link = launch_path(providers, spec_, query)
    parts = urlsplit(link)
    assert parts.fragment == ""
    assert parts.path.startswith(LAUNCH_PREFIX + "/")
    assert providers.parse_link(parts.path[len(LAUNCH_PREFIX) + 1 :]) == spec_
    assert parse_qs(parts.query) == {k: [v] for k, v in query.items() if v}


@pytest.mark.parametrize(
    ("providers", "spec_"),
    [
        (PROVIDERS, GH),
        (PROVIDERS, dataclasses.replace(GH, ref="feature/x/y")),
        (PROVIDERS, spec("gh", "org/repo", COMMIT)),
        (PROVIDERS, dataclasses.replace(GL, ref="release/2024")),
        (PROVIDERS, spec("gl", "group/project", "v1.0")),
        (PROVIDERS, dataclasses.replace(GIT, ref="feature/a&b")),
        (PROVIDERS, spec("git", "https://example.org:8443/a/b", "HEAD")),
        (ENTERPRISE, ENTERPRISE.from_fields("gh", "org/repo", "dev/x")),
        (ENTERPRISE, ENTERPRISE.from_fields("gl", "g/p", "main")),
    ],
)
def test_launch_links_parse_back(providers: RepoProviders, spec_: RepoSpec) -> None:
    query = {"urlpath": "/lab/tree/x y.ipynb", "size": "", "group": "a&b"}
    _link_round_trip(providers, spec_, query)


# A launch link is a URI: what a browser sends back is its path, as written.
_URI = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")
_REF_CHARS = string.ascii_letters + string.digits + "-._/#%&+=@!,;'()é"
REFS = st.text(_REF_CHARS, min_size=1, max_size=20).filter(lambda r: ref_problem(r) is None)
QUERY = st.dictionaries(
    st.sampled_from(["urlpath", "filepath", "environment", "size"]), st.text(max_size=20)
)


@given(REFS, QUERY)
def test_gitlab_and_git_links_parse_back_for_any_ref(ref: str, query: dict[str, str]) -> None:
    for spec_ in (dataclasses.replace(GL, ref=ref), dataclasses.replace(GIT, ref=ref)):
        assert _URI.fullmatch(launch_path(PROVIDERS, spec_))
        _link_round_trip(PROVIDERS, spec_, query)


@given(REFS.filter(lambda r: r.isascii() and "#" not in r), QUERY)
def test_github_links_parse_back_for_any_ref(ref: str, query: dict[str, str]) -> None:
    spec_ = dataclasses.replace(GH, ref=ref)
    assert _URI.fullmatch(launch_path(PROVIDERS, spec_))
    _link_round_trip(PROVIDERS, spec_, query)


@pytest.mark.parametrize("ref", ["feat#1", "café"])
def test_github_links_escape_the_ref(ref: str) -> None:
    assert ref_problem(ref) is None  # both are valid git refs
    spec_ = dataclasses.replace(GH, ref=ref)
    link = launch_path(PROVIDERS, spec_, {"urlpath": "/lab"})
    assert _URI.fullmatch(link)
    _link_round_trip(PROVIDERS, spec_, {"urlpath": "/lab"})


# --- badges -----------------------------------------------------------------------


def test_badges_escape_the_link_in_html() -> None:
    link = "https://hub.example.org/hub/eohub/launch/gh/o/r/main?a=1&b=\"2\"&c='3'<x>"
    badge = 'https://hub.example.org/hub/eohub/badge.svg?style="flat"&x=1'
    markdown, html = badges(link, badge)
    assert markdown == f"[![Launch on eohub]({badge})]({link})"
    assert html == (
        '<a href="https://hub.example.org/hub/eohub/launch/gh/o/r/main?a=1&amp;b=&quot;2&quot;'
        '&amp;c=&#x27;3&#x27;&lt;x&gt;"><img src="https://hub.example.org/hub/eohub/badge.svg'
        '?style=&quot;flat&quot;&amp;x=1" alt="Launch on eohub"></a>'
    )


class _Attributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str | None] = {}
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.found.update(attrs)


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40), st.text(max_size=40))
def test_the_html_badge_carries_its_urls_exactly(link: str, badge_url: str) -> None:
    parser = _Attributes()
    parser.feed(badges(link, badge_url)[1])
    parser.close()
    assert parser.tags == ["a", "img"]
    assert parser.found == {"href": link, "src": badge_url, "alt": "Launch on eohub"}


# --- where a local launch clones, and what it opens -------------------------------


@pytest.mark.parametrize(
    ("spec_", "folder"),
    [
        (GH, "repo"),
        (spec("gh", "org/My.Repo_1"), "My.Repo_1"),
        (GL, "project"),
        (GIT, "b"),
        (spec("git", "https://example.org/a/b/"), "b"),
        (spec("git", "https://example.org/a/r%C3%A9po"), "r-C3-A9po"),
        (spec("git", "https://example.org/a/répo"), "r-po"),
        (spec("git", "https://example.org/a/a~b!c$d"), "a-b-c-d"),
        (spec("git", "https://example.org/a/_x_"), "x"),
        (spec("git", "https://example.org/a/.hidden.git"), "hidden"),
        (spec("git", "https://example.org/a/" + "x" * 100), "x" * 64),
        (spec("git", "https://example.org/a/..."), "repository"),
        (spec("git", "https://example.org/a/~~~"), "repository"),
        (spec("git", "https://example.org/a/%2E%2E%2E"), "2E-2E-2E"),
    ],
)
def test_clone_folder(spec_: RepoSpec, folder: str) -> None:
    assert clone_folder(spec_) == folder


_SEGMENT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=80,
)


@given(_SEGMENT)
def test_a_clone_folder_is_one_plain_path_part(last: str) -> None:
    try:
        spec_ = spec("git", f"https://example.org/group/{last}")
    except RepoError:
        return
    folder = clone_folder(spec_)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", folder)
    assert not folder.startswith((".", "-"))


@pytest.mark.parametrize(
    ("base", "folder", "filepath", "expected"),
    [
        ("/lab", "repo", "nb/intro.ipynb", "/lab/tree/repo/nb/intro.ipynb"),
        ("/lab/", "repo", "intro.ipynb", "/lab/tree/repo/intro.ipynb"),
        ("/lab", "repo", None, "/lab/tree/repo"),
        ("/lab/tree", "repo", None, "/lab/tree/repo"),
        ("/lab/tree/", "repo", "a.ipynb", "/lab/tree/repo/a.ipynb"),
        ("/", "repo", "a.ipynb", "/lab/tree/repo/a.ipynb"),
        ("/notebooks", "repo", "a.ipynb", "/tree/repo/a.ipynb"),
        ("/notebooks/", "repo", None, "/tree/repo"),
        # other start pages are kept
        ("/rstudio", "repo", "a.R", "/rstudio"),
        ("/rstudio/", "repo", None, "/rstudio/"),
        ("/doc", "repo", "a.ipynb", "/doc"),
        # an empty folder: the repository is the working directory
        ("/lab", "", None, "/lab"),
        ("/lab/", "", None, "/lab/"),
        ("/tree", "", None, "/tree"),
        ("/lab", "", "a.ipynb", "/lab/tree/a.ipynb"),
        # the path is quoted once
        (
            "/lab",
            "repo",
            "my dir/my notebook.ipynb",
            "/lab/tree/repo/my%20dir/my%20notebook.ipynb",
        ),
        ("/lab", "repo", "a#b?.ipynb", "/lab/tree/repo/a%23b%3F.ipynb"),
        ("/lab", "repo", "a%20b.ipynb", "/lab/tree/repo/a%2520b.ipynb"),  # a raw name
    ],
)
def test_repo_urlpath(base: str, folder: str, filepath: str | None, expected: str) -> None:
    assert repo_urlpath(base, folder, filepath) == expected


@pytest.mark.parametrize("base", ["/tree", "/tree/"])
def test_repo_urlpath_keeps_the_classic_tree(base: str) -> None:
    assert repo_urlpath(base, "repo", "a.ipynb") == "/tree/repo/a.ipynb"


_FILEPATH = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda p: filepath_problem(p) is None)


@given(
    st.sampled_from(["/lab", "/lab/", "/lab/tree", "/", "/notebooks", "/tree/"]),
    st.sampled_from(["", "repo", "My.Repo_1"]),
    st.none() | _FILEPATH,
)
def test_a_repo_urlpath_is_a_start_page_that_names_the_file(
    base: str, folder: str, filepath: str | None
) -> None:
    urlpath = repo_urlpath(base, folder, filepath)
    assert urlpath_problem(urlpath) is None
    path = "/".join(p for p in (folder, filepath) if p)
    if path:
        assert unquote(urlpath.split("/tree/", 1)[1]) == path
    else:
        assert urlpath == base


def test_repo_options_are_refused_by_the_schema_before_policy() -> None:
    with pytest.raises(OptionsError) as refused:
        parse_options({"repo": "a b", "ref": "x\ny", "provider": "GH", "filepath": "../x"})
    assert set(refused.value.errors) == {"repo", "ref", "provider", "filepath"}
