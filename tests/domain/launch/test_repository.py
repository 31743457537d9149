"""Repository launches: provider detection, policy, resolution, links, badges and folders."""

from __future__ import annotations

import dataclasses
import re
import string
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.options import (
    LaunchRequest,
    OptionsError,
    filepath_problem,
    parse_options,
    urlpath_problem,
)
from eohub.domain.launch.policy import Member, authorize, split_charged
from eohub.domain.launch.repository import (
    LAUNCH_PREFIX,
    RepoRules,
    badges,
    check_repository,
    clone_folder,
    detect_provider,
    launch_path,
    repo_urlpath,
    spec_from_request,
)
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import RepoError, RepoProviders, RepoSpec, ref_problem

PROVIDERS = RepoProviders.default()
# GitHub Enterprise under a path prefix, and a self-hosted GitLab.
ENTERPRISE = RepoProviders.default(
    github_url="https://ghe.example.org/github/", gitlab_url="https://git.example.org"
)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PREFIX = "registry.example.org/binder/r2d-"
RULES = RepoRules(PROVIDERS, RepoPolicy(), image_prefix=PREFIX)
NO_BUILDER = RepoRules(PROVIDERS, RepoPolicy())

GH = RepoSpec("gh", "https://github.com/org/repo", "org/repo", "main")
GL = RepoSpec("gl", "https://gitlab.com/group/sub/project.git", "group/sub/project", "main")
GIT = RepoSpec("git", "https://example.org/a/b.git", "https://example.org/a/b.git", "main")


def spec(provider: str, repo: str, ref: str = "HEAD") -> RepoSpec:
    return PROVIDERS.from_fields(provider, repo, ref)


# --- detect_provider --------------------------------------------------------------


@pytest.mark.parametrize(
    ("providers", "url", "expected"),
    [
        (PROVIDERS, "https://github.com/org/repo", ("gh", "org/repo")),
        (PROVIDERS, "https://github.com/org/repo.git", ("gh", "org/repo")),
        (PROVIDERS, "https://github.com/org/repo/", ("gh", "org/repo")),
        (PROVIDERS, "https://github.com/org/repo.git/", ("gh", "org/repo")),
        (PROVIDERS, "HTTPS://GitHub.com/org/repo", ("gh", "org/repo")),
        (PROVIDERS, "https://gitlab.com/group/project", ("gl", "group/project")),
        (PROVIDERS, "https://gitlab.com/group/sub/project.git", ("gl", "group/sub/project")),
        # another host, or the same host by another scheme, is a plain git repository
        (PROVIDERS, "https://example.org/a/b.git", ("git", "https://example.org/a/b.git")),
        (PROVIDERS, "https://www.github.com/org/repo", ("git", "https://www.github.com/org/repo")),
        (PROVIDERS, "http://github.com/org/repo", ("git", "http://github.com/org/repo")),
        # GitHub Enterprise under a path prefix: only URLs under that prefix are GitHub's
        (ENTERPRISE, "https://ghe.example.org/github/org/repo", ("gh", "org/repo")),
        (ENTERPRISE, "https://ghe.example.org/github/org/repo.git/", ("gh", "org/repo")),
        (
            ENTERPRISE,
            "https://ghe.example.org/githubx/org/repo",
            ("git", "https://ghe.example.org/githubx/org/repo"),
        ),
        (
            ENTERPRISE,
            "https://ghe.example.org/org/repo",
            ("git", "https://ghe.example.org/org/repo"),
        ),
        (ENTERPRISE, "https://git.example.org/group/project", ("gl", "group/project")),
        (ENTERPRISE, "https://github.com/org/repo", ("git", "https://github.com/org/repo")),
    ],
)
def test_detect_provider(providers: RepoProviders, url: str, expected: tuple[str, str]) -> None:
    assert detect_provider(providers, url) == expected


@pytest.mark.parametrize(
    ("repo", "field", "fragment"),
    [
        ("org/repo", "provider", "choose a provider, or paste the repository's URL"),
        ("github.com/org/repo", "provider", "choose a provider"),
        ("", "provider", "choose a provider"),
        ("https://github.com", "repo", "must name a repository path"),
        ("file:///etc/passwd", "repo", "file://"),
        ("https://user:pw@github.com/org/repo", "repo", "user name or password"),
    ],
)
def test_detect_provider_refuses(repo: str, field: str, fragment: str) -> None:
    with pytest.raises(RepoError) as refused:
        detect_provider(PROVIDERS, repo)
    assert refused.value.field == field
    assert fragment in refused.value.errors[field]


def test_detect_provider_tells_ports_apart() -> None:
    assert detect_provider(PROVIDERS, "https://github.com:8443/org/repo") == (
        "git",
        "https://github.com:8443/org/repo",
    )


# --- spec_from_request ------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (LaunchRequest(provider="gh", repo="org/repo"), spec("gh", "org/repo", "HEAD")),
        (
            LaunchRequest(provider="gh", repo="org/repo", ref="v1.0"),
            spec("gh", "org/repo", "v1.0"),
        ),
        # the provider's own URL is read as its owner/name
        (
            LaunchRequest(provider="gh", repo="https://github.com/org/repo.git"),
            spec("gh", "org/repo"),
        ),
        (
            LaunchRequest(provider="gl", repo="https://gitlab.com/group/sub/project", ref="dev"),
            spec("gl", "group/sub/project", "dev"),
        ),
        # no provider: detected from the URL
        (LaunchRequest(repo="https://github.com/org/repo"), spec("gh", "org/repo")),
        (
            LaunchRequest(repo="https://example.org/a/b.git"),
            spec("git", "https://example.org/a/b.git"),
        ),
        # git takes any URL as it is, a GitHub one too
        (
            LaunchRequest(provider="git", repo="https://github.com/org/repo"),
            spec("git", "https://github.com/org/repo"),
        ),
    ],
)
def test_spec_from_request(request_: LaunchRequest, expected: RepoSpec) -> None:
    assert spec_from_request(PROVIDERS, request_) == expected


@pytest.mark.parametrize(
    ("request_", "field", "fragment"),
    [
        (LaunchRequest(), "repo", "name the repository to launch"),
        (LaunchRequest(provider="gh", ref="main"), "repo", "name the repository to launch"),
        (
            LaunchRequest(provider="gl", repo="https://github.com/org/repo"),
            "repo",
            "is not a repository of provider 'gl'",
        ),
        (
            LaunchRequest(provider="gh", repo="https://example.org/org/repo"),
            "repo",
            "is not a repository of provider 'gh'",
        ),
        (LaunchRequest(repo="org/repo"), "provider", "choose a provider"),
        (LaunchRequest(provider="bb", repo="org/repo"), "provider", "is not a provider"),
        (LaunchRequest(provider="gh", repo="org"), "repo", "invalid repository name"),
        (
            LaunchRequest(provider="gh", repo="org/repo", ref="-x"),
            "ref",
            "must not start with '-'",
        ),
    ],
)
def test_spec_from_request_refuses(request_: LaunchRequest, field: str, fragment: str) -> None:
    with pytest.raises(RepoError) as refused:
        spec_from_request(PROVIDERS, request_)
    assert list(refused.value.errors) == [field]
    assert fragment in refused.value.errors[field]


_OWNER = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,10}", fullmatch=True)
_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True).filter(
    lambda n: not n.endswith(".git")
)


@given(_OWNER, _NAME, st.sampled_from(["", ".git", "/", ".git/"]))
def test_a_github_url_and_its_owner_name_are_the_same_launch(
    owner: str, name: str, suffix: str
) -> None:
    by_fields = spec_from_request(PROVIDERS, LaunchRequest(provider="gh", repo=f"{owner}/{name}"))
    url = f"https://github.com/{owner}/{name}{suffix}"
    assert spec_from_request(PROVIDERS, LaunchRequest(repo=url)) == by_fields
    assert spec_from_request(PROVIDERS, LaunchRequest(provider="gh", repo=url)) == by_fields


# --- check_repository -------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "repo", "trusted"),
    [
        (RepoPolicy(), "https://github.com/org/repo", False),
        (RepoPolicy(allowed_hosts=("github.com",)), "https://github.com/org/repo", False),
        (
            RepoPolicy(trusted_repos=("github.com/pangeo-data/*",)),
            "https://github.com/org/repo",
            False,
        ),
        (
            RepoPolicy(trusted_repos=("github.com/pangeo-data/*",)),
            "https://github.com/Pangeo-Data/tutorial",
            True,
        ),
        (RepoPolicy(trusted_repos=("gitlab.com/*",)), "https://gitlab.com/g/p", True),
    ],
)
def test_check_repository_allows(policy: RepoPolicy, repo: str, trusted: bool) -> None:
    rules = RepoRules(PROVIDERS, policy)
    request = LaunchRequest(repo=repo, ref="dev", filepath="nb/intro.ipynb")
    launch = check_repository(rules, request)
    assert launch.spec == spec_from_request(PROVIDERS, request)
    assert launch.trusted is trusted
    assert launch.filepath == "nb/intro.ipynb"
    assert (launch.commit, launch.image) == (None, None)


@pytest.mark.parametrize(
    ("policy", "repo", "fragment"),
    [
        (
            RepoPolicy(denied_repos=("github.com/evil/*",)),
            "https://github.com/Evil/x",
            "github.com/evil/x is not allowed here",
        ),
        (
            RepoPolicy(allowed_repos=("github.com/ok/*",)),
            "https://github.com/other/x",
            "is not allowed here",
        ),
        (
            RepoPolicy(denied_hosts=("gitlab.com",)),
            "https://gitlab.com/g/p",
            "repositories on gitlab.com are not allowed",
        ),
        (
            RepoPolicy(allowed_hosts=("github.com",)),
            "https://example.org/a.git",
            "repositories on example.org",
        ),
        (RepoPolicy(), "http://example.org/a.git", "must use https://"),
        (RepoPolicy(), "https://127.0.0.1/a.git", "loopback, private or reserved"),
        # deny wins over trust
        (
            RepoPolicy(denied_repos=("github.com/*",), trusted_repos=("github.com/*",)),
            "https://github.com/org/repo",
            "is not allowed here",
        ),
    ],
)
def test_check_repository_refuses(policy: RepoPolicy, repo: str, fragment: str) -> None:
    with pytest.raises(RepoError) as refused:
        check_repository(RepoRules(PROVIDERS, policy), LaunchRequest(repo=repo))
    assert list(refused.value.errors) == ["repo"]
    assert fragment in refused.value.errors["repo"]


# --- RepoLaunch -------------------------------------------------------------------


def test_resolved_names_the_image_per_repo_image_name() -> None:
    launch = check_repository(
        RULES, LaunchRequest(provider="gh", repo="binder-examples/requirements")
    )
    resolved = launch.resolved(COMMIT, RULES)
    # the name test_repo_images derives by hand from BinderHub's builder
    assert resolved.image == PREFIX + "binder-2dexamples-2drequirements-55ab5c:" + COMMIT
    assert resolved.commit == COMMIT
    assert resolved.check == launch.check
    assert (launch.commit, launch.image) == (None, None)  # the original is unchanged


def test_resolved_without_an_image_prefix_names_no_image() -> None:
    launch = check_repository(NO_BUILDER, LaunchRequest(provider="gh", repo="org/repo"))
    resolved = launch.resolved(COMMIT, NO_BUILDER)
    assert (resolved.commit, resolved.image) == (COMMIT, None)


@pytest.mark.parametrize(
    "commit", ["main", "HEAD", COMMIT.upper(), COMMIT[:-1], COMMIT + "0", "", " " + COMMIT]
)
def test_resolved_refuses_what_is_not_a_commit(commit: str) -> None:
    launch = check_repository(RULES, LaunchRequest(provider="gh", repo="org/repo"))
    with pytest.raises(RepoError) as refused:
        launch.resolved(commit, RULES)
    assert refused.value.field == "ref"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            LaunchRequest(repo="https://github.com/org/repo.git"),
            {"provider": "gh", "repo": "org/repo", "ref": "HEAD"},
        ),
        (
            LaunchRequest(provider="gl", repo="group/sub/project", ref="v1", filepath="a b.ipynb"),
            {"provider": "gl", "repo": "group/sub/project", "ref": "v1", "filepath": "a b.ipynb"},
        ),
        (
            LaunchRequest(repo="https://example.org/a/b.git", ref="release/2024"),
            {"provider": "git", "repo": "https://example.org/a/b.git", "ref": "release/2024"},
        ),
    ],
)
def test_repo_launch_user_options(request_: LaunchRequest, expected: dict[str, object]) -> None:
    launch = check_repository(RULES, request_)
    assert launch.user_options() == expected
    assert launch.resolved(COMMIT, RULES).user_options() == expected  # the ref, not the commit


CONFIG = parse_launch_config(
    {"binder": {"repository": True}}, {"small": {"cpu": 1, "memory": "1G"}}, {}, backend="kube"
)
ALICE = Member("alice", frozenset({"staff"}))


@pytest.mark.parametrize(
    "options",
    [
        {"provider": "gh", "repo": "org/repo"},
        {"repo": "https://github.com/org/repo.git", "ref": "feature/x", "filepath": "nb/a.ipynb"},
        {"provider": "gl", "repo": "group/sub/project", "ref": COMMIT},
        {"repo": "https://example.org/a/b.git", "ref": "v1.0", "urlpath": "/rstudio/"},
        {"provider": "git", "repo": "https://github.com/org/repo"},
    ],
)
def test_user_options_authorize_to_the_same_launch(options: dict[str, object]) -> None:
    launch = authorize(CONFIG, ALICE, parse_options(options), None, RULES)
    assert launch.repo is not None
    resolved = dataclasses.replace(launch, repo=launch.repo.resolved(COMMIT, RULES))
    stored, _ = split_charged(resolved.user_options())
    again = authorize(CONFIG, ALICE, parse_options(stored), None, RULES)  # type: ignore[arg-type]
    assert again == launch
    assert again.repo is not None
    assert again.repo.resolved(COMMIT, RULES) == resolved.repo


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
