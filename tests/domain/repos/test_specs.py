"""Repository specs and refs: tables of good and hostile input, plus hypothesis."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.fields import FieldErrors
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import (
    GitHubProvider,
    GitLabProvider,
    GitProvider,
    RepoError,
    RepoProviders,
    RepoSpec,
    is_commit,
    parse_url,
    ref_problem,
)

PROVIDERS = RepoProviders.default()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (
            "gh/binder-examples/requirements/main",
            RepoSpec(
                "gh",
                "https://github.com/binder-examples/requirements",
                "binder-examples/requirements",
                "main",
            ),
        ),
        (
            "gh/owner/repo.git/feature/x",
            RepoSpec("gh", "https://github.com/owner/repo", "owner/repo", "feature/x"),
        ),
        ("gh/o/r/" + COMMIT, RepoSpec("gh", "https://github.com/o/r", "o/r", COMMIT)),
        (
            "gl/group%2Fsub%2Fproject/v1.0",
            RepoSpec(
                "gl", "https://gitlab.com/group/sub/project.git", "group/sub/project", "v1.0"
            ),
        ),
        (
            "git/https%3A%2F%2Fexample.org%2Fa%2Fb.git/release%2F2024",
            RepoSpec(
                "git",
                "https://example.org/a/b.git",
                "https://example.org/a/b.git",
                "release/2024",
            ),
        ),
        (
            "/git/http%3A%2F%2F10.0.0.1%3A8080%2Fr/HEAD/",
            RepoSpec("git", "http://10.0.0.1:8080/r", "http://10.0.0.1:8080/r", "HEAD"),
        ),
    ],
)
def test_links_parse_in_binderhubs_spec_formats(link: str, expected: RepoSpec) -> None:
    spec = PROVIDERS.parse_link(link)
    assert spec == expected
    assert PROVIDERS.parse_link(PROVIDERS.link(spec)) == spec


def test_enterprise_hosts_and_form_fields() -> None:
    providers = RepoProviders.default(
        github_url="https://github.example.org/", gitlab_url="https://git.example.org/gitlab"
    )
    spec = providers.from_fields("gh", " pangeo-data/pangeo-docker-images ", "")
    assert spec == RepoSpec(
        "gh",
        "https://github.example.org/pangeo-data/pangeo-docker-images",
        "pangeo-data/pangeo-docker-images",
        "HEAD",
    )
    spec = providers.from_fields("gl", "eo/tools", "main")
    assert spec.url == "https://git.example.org/gitlab/eo/tools.git"
    assert providers.link(spec) == "gl/eo%2Ftools/main"
    assert spec.name == "git.example.org/gitlab/eo/tools"


def test_more_providers_plug_in() -> None:
    providers = RepoProviders.default(
        extra={"codeberg": GitHubProvider("https://codeberg.org"), "any": GitProvider()}
    )
    spec = providers.parse_link("codeberg/forgejo/forgejo/main")
    assert spec.url == "https://codeberg.org/forgejo/forgejo"
    assert set(providers.providers) == {"gh", "gl", "git", "codeberg", "any"}


# The fixed corpus of known attacks, as links and as form fields: (where, input, field).
ATTACK_LINKS = [
    ("gh/owner/repo/--upload-pack=touch /tmp/x", "ref"),
    ("gh/owner/repo/--upload-pack=touch%20/tmp/x", "ref"),
    ("gh/owner/--upload-pack=x/main", "repo"),
    ("gh/-owner/repo/main", "repo"),
    ("gh/owner/repo/-x", "ref"),
    ("gh/owner/repo/a..b", "ref"),
    ("gh/owner/repo/a b", "ref"),
    ("gh/owner/repo/a%0Ab", "ref"),
    ("gh/owner/repo", "spec"),
    ("gh/../../etc/main", "repo"),
    ("gl/..%2F..%2Fetc/main", "repo"),
    ("gl/--upload-pack%3Dx%2Fy/main", "repo"),
    ("gl/group%2Fproject/", "spec"),
    ("git/ext%3A%3Ash%20-c%20touch%25%20%2Ftmp%2Fx/main", "repo"),
    ("git/file%3A%2F%2F%2Fetc/main", "repo"),
    ("git/--upload-pack%3Dtouch%20%2Ftmp%2Fx/main", "repo"),
    ("git/https%3A%2F%2Fuser%3Apw%40github.com%2Fa%2Fb/main", "repo"),
    ("git/ssh%3A%2F%2Fgit%40github.com%2Fa%2Fb/main", "repo"),
    ("git/git%40github.com%3Aa%2Fb/main", "repo"),
    ("git/https%3A%2F%2Fexample.org%2Fa%2F..%2F..%2Fb/main", "repo"),
    ("git/https%3A%2F%2Fexample.org%2F-u%2Fb/main", "repo"),
    ("git/https%3A%2F%2Fexample.org%2Fa/--output=x", "ref"),
    ("svn/a/b/c", "provider"),
]


@pytest.mark.parametrize(("link", "where"), ATTACK_LINKS)
def test_hostile_links_are_refused_naming_the_field(link: str, where: str) -> None:
    with pytest.raises(RepoError) as caught:
        PROVIDERS.parse_link(link)
    assert caught.value.field == where
    assert set(caught.value.errors) == {where}
    assert isinstance(caught.value, FieldErrors)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("--upload-pack=touch /tmp/x", "must not start with '-'"),
        ("ext::sh -c touch% /tmp/x", "'<transport>::' form"),
        ("fd::17", "'<transport>::' form"),
        ("file:///etc", "local path (file://)"),
        ("FILE:///etc/passwd", "local path (file://)"),
        ("ssh://git@github.com/a/b", "must be an https:// URL"),
        ("git://github.com/a/b", "must be an https:// URL"),
        ("/srv/git/repo", "must be an https:// URL"),
        ("https://user:pw@github.com/a/b", "user name or password"),
        ("https://token@github.com/a/b", "user name or password"),
        ("https://github.com/a/b?upload-pack=x", "query or a fragment"),
        ("https://github.com/a/b#x", "query or a fragment"),
        ("https://github.com/a/b c", "spaces or control characters"),
        ("https://github.com/a/b\n", "spaces or control characters"),
        ("https://github.com/a/b%0a", "spaces or control characters"),
        ("https://github.com\\@evil.org/a", "'\\\\'"),
        ("https://github.com/a/../../b", "'..' path parts"),
        ("https://github.com/a/%2e%2e/b", "'..' path parts"),
        ("https://github.com/a/-b", "starting with '-'"),
        ("https://github.com/a/%2Db", "starting with '-'"),
        ("https://github.com", "repository path"),
        ("https://github.com//a", "repository path"),
        ("https://[::1/x", "not a valid URL"),
        ("https://github.com:99999/a", "not a valid URL"),
        ("https://github.com:0/a", "port from 1 to 65535"),
        ("https://[fe80::1%25eth0]/x", "percent-encoded host"),
        ("https://127.1/x", "usual form"),
        ("https://0x7f.0.0.1/x", "usual form"),
        ("https://2130706433/x", "usual form"),
        ("https://exämple.org/x", "host name of ASCII"),
        ("https://under_score.org/x", "host name of ASCII"),
        ("https:///x", "host name of ASCII"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(RepoError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_url(url)


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [
        ("https://github.com/a/b", "github.com", "a/b"),
        ("https://GitHub.com/a/b.git", "github.com", "a/b"),
        ("HTTPS://example.org:8443/g/s/p.git/", "example.org", "g/s/p"),
        ("https://[2001:db8::1]/x", "2001:db8::1", "x"),
        ("http://192.0.2.7/x", "192.0.2.7", "x"),
    ],
)
def test_good_urls_split_into_host_and_path(url: str, host: str, path: str) -> None:
    parsed = parse_url(url)
    assert (parsed.host, parsed.path, parsed.url) == (host, path, url)


@pytest.mark.parametrize(
    "ref",
    ["main", "HEAD", "v1.0.0", "feature/x-y", "release/2024.01", "a@b", "ünïcode", COMMIT],
)
def test_good_refs(ref: str) -> None:
    assert ref_problem(ref) is None


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "empty"),
        ("-x", "start with '-'"),
        ("--upload-pack=touch /tmp/x", "start with '-'"),
        ("a..b", "'..'"),
        ("a b", "spaces"),
        ("a\nb", "spaces"),
        ("a\tb", "spaces"),
        ("a\x7fb", "spaces"),
        ("a%0ab", "spaces"),
        ("a\u200bb", "spaces"),
        ("a~1", "'~'"),
        ("a^", "'^'"),
        ("a:b", "':'"),
        ("a?", "'?'"),
        ("a*", "'*'"),
        ("a[b", "'['"),
        ("a\\b", "'\\\\\\\\'"),
        ("a@{1}", "'@{'"),
        ("@", "not be '@'"),
        ("/a", "start or end with '/'"),
        ("a/", "start or end with '/'"),
        ("a//b", "'//'"),
        ("a.", "end with '.'"),
        (".a", "start with '.'"),
        ("a/.b", "start with '.'"),
        ("a.lock", "'.lock'"),
        ("a.lock/b", "'.lock'"),
        ("x" * 256, "at most 255"),
    ],
)
def test_bad_refs_follow_git_check_ref_format(ref: str, message: str) -> None:
    problem = ref_problem(ref)
    assert problem is not None
    assert message.replace("\\\\", "\\") in problem


@pytest.mark.parametrize(
    ("ref", "expected"),
    [(COMMIT, True), (COMMIT.upper(), False), (COMMIT[:-1], False), ("main", False)],
)
def test_is_commit(ref: str, expected: bool) -> None:
    assert is_commit(ref) is expected


@pytest.mark.parametrize("base", ["ftp://github.com", "https://u:p@ghe.org", "https://127.1"])
def test_a_bad_provider_base_url_is_refused(base: str) -> None:
    with pytest.raises(RepoError) as caught:
        GitLabProvider(base)
    assert caught.value.field == "base_url"


def _accepted_is_safe(spec: RepoSpec) -> None:
    parsed = urlsplit(spec.url)
    assert parsed.scheme in ("https", "http")
    assert not parsed.username
    assert not parsed.password
    for part in (*spec.url.split("/"), *spec.repo.split("/"), *spec.ref.split("/")):
        assert not part.startswith("-")
    assert not any(c.isspace() or ord(c) < 32 for c in spec.url + spec.ref)


@given(st.text(max_size=80))
def test_random_links_raise_nothing_but_repo_errors(text: str) -> None:
    for link in (text, f"gh/{text}", f"gl/{text}", f"git/{text}", f"git/https%3A%2F%2F{text}"):
        try:
            spec = PROVIDERS.parse_link(link)
        except RepoError:
            continue
        _accepted_is_safe(spec)
        try:
            RepoPolicy(allow_http=True).check(spec, PROVIDERS)
        except RepoError:
            continue


@given(
    st.sampled_from(["gh", "gl", "git", "nope"]),
    st.one_of(st.text(max_size=60), st.from_regex(r"https?://[a-z0-9.:\[\]@%/-]{0,40}")),
    st.text(max_size=40),
)
def test_random_fields_raise_nothing_but_repo_errors(provider: str, repo: str, ref: str) -> None:
    try:
        spec = PROVIDERS.from_fields(provider, repo, ref)
        check = RepoPolicy(allow_http=True).check(spec, PROVIDERS)
    except RepoError:
        return
    _accepted_is_safe(spec)
    assert ref_problem(spec.ref) is None
    assert check.spec is spec


_PIECES = st.sampled_from(
    ["a", "B-1", "x.y", "-u", "%2Du", "..", "%2e%2e", "", " ", "%0a", "@", ":", "?q", "#f"]
)
_HOSTS = st.sampled_from(
    ["github.com", "x.org", "127.0.0.1", "[::1]", "10.1.1.1", "8.8.8.8", "u:p@x.org", "x.org:0"]
)


@given(st.sampled_from(["https", "http", "file", "ext:", "ssh"]), _HOSTS, st.lists(_PIECES))
def test_near_valid_urls_are_safe_when_accepted(scheme: str, host: str, parts: list[str]) -> None:
    url = f"{scheme}://{host}/{'/'.join(parts)}"
    try:
        spec = PROVIDERS.from_fields("git", url, "main")
        check = RepoPolicy(allow_http=True).check(spec, PROVIDERS)
    except RepoError:
        return
    _accepted_is_safe(spec)
    assert check.host in ("github.com", "x.org", "8.8.8.8")
    assert ".." not in spec.url.lower().replace("%2e", ".")
