"""Open-ended hostile input for hypothesis, and the invariants of what may be accepted.

The invariants are written out here, independently of the code under test.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from urllib.parse import quote, unquote, urlsplit

from hypothesis import strategies as st

from eohub.domain.repos.images import repo_image_name
from eohub.domain.repos.policy import RepoCheck, RepoPolicy, address_allowed
from eohub.domain.repos.specs import MAX_URL, RepoSpec, ref_problem
from tests.domain.repos.attack_cases import (
    LISTS,
    POLICIES,
    PROVIDERS,
    T,
    attempt,
)

# -- hypothesis: whatever is accepted is safe -------------------------------------------
PIECES = [
    *("-", "--", "-u", "--upload-pack=x", "--config=a=b", "%2D", "%252D", "%25", "%"),
    *("%2F", "%2f", "%2E", "%2e%2e", "..", ".", "/", "//", "@", ":", "::", "?", "#"),
    *("\\", "%5C", " ", "\t", "\n", "\r", "%0A", "%0d", "\x00", "%00", "%2500", "\x7f"),
    *("\u202e", "\u200b", "\ufeff", "\u00a0", "\uff0f", "\uff0e", "\u3002", "\uff0d"),
    *("\u2025", "\u0301", "\u00e9", "@{", ".lock", "~", "^", "*", "[", "]", "=", ".git"),
    *("ext::", "fd::", "file://", "https://", "http://", "HTTPS://", "ssh://", "github.com"),
    *("127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "0x7f.1", "localhost", "8.8.8.8", ":443"),
    *("x", "main", "a-b", "HEAD", "refs/heads/", "owner", "repo", "_", "v1.0", "0"),
]
# Near-valid input: mostly plain words with a hostile piece here and there, so that
# both refusals and acceptances are common; and, rarely, anything at all.


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each as often as its weight says."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda s: s
    )


HOSTILE = st.sampled_from(PIECES) | st.text(max_size=3)
PLAIN = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,8}", fullmatch=True)
WORD = st.lists(weighted((6, PLAIN), (1, HOSTILE)), min_size=1, max_size=3).map("".join)
PATH = st.lists(WORD, min_size=1, max_size=4).map("/".join)
TEXT = st.lists(HOSTILE, max_size=10).map("".join)
HOSTS = weighted(
    (2, st.from_regex(r"(?:[a-z0-9]{1,8}\.){0,2}[a-z]{2,6}", fullmatch=True)),
    (
        1,
        st.sampled_from(
            [
                *("github.com", "GitHub.com", "gitlab.com", "evil.example.org", "git.example.org"),
                *("x.org.", "-x.org", "a_b.org", "127.0.0.1", "8.8.8.8", "[::1]", "[fec0::1]"),
                *("[2606:4700::1111]", "[::ffff:8.8.8.8]", "[v1.x]", "0x7f.1", "2130706433"),
                *("localhost", "xn--80ak6aa92e.com", "ex\u00e4mple.org", "u:pw@x.org", "x@y.org"),
                *("github.com\uff0fevil.org", "github\u3002com", "[fe80::1%25eth0]", "", "1e1"),
            ]
        ),
    ),
)
SCHEMES = ["https://"] * 4 + ["http://", "HTTPS://", "file://", "ssh://", "ext::", ""]
URLS = st.builds(
    "{}{}{}/{}".format,
    st.sampled_from(SCHEMES),
    HOSTS,
    st.sampled_from(["", "", "", ":443", ":8443", ":", ":0", ":99999", ":0443", ":x"]),
    PATH,
)
REFS = PATH | st.sampled_from(["", "main", "HEAD", "v1.0", "a" * 40, "0" * 40, "x" * 255])
FIELDS = weighted(
    (3, st.tuples(st.just("gh"), st.builds("{}/{}".format, WORD, WORD), REFS)),
    (3, st.tuples(st.just("gl"), PATH, REFS)),
    (3, st.tuples(st.just("git"), URLS, REFS)),
    (1, st.tuples(st.sampled_from(["gh", "gl", "git", "svn", ""]), TEXT, TEXT)),
)


def write_link(fields: tuple[str, str, str], style: str) -> str:
    """A launch link for the fields: as the provider writes it, as typed, or encoded."""
    provider, repo, ref = fields
    if style == "natural" and provider in PROVIDERS.providers:
        return f"{provider}/{PROVIDERS.get(provider).join_spec(repo, ref)}"
    if style == "raw":
        return f"{provider}/{repo}/{ref}"
    for _ in range(2 if style == "twice" else 1):
        repo, ref = quote(repo, safe=""), quote(ref, safe="")
    return f"{provider}/{repo}/{ref}"


_WRITTEN = st.builds(write_link, FIELDS, st.sampled_from(["natural"] * 3 + ["raw", "twice"]))
LINKS = weighted((9, _WRITTEN), (1, TEXT))
COMMITS = st.from_regex(r"[0-9a-f]{40}", fullmatch=True)
IMAGE_PREFIXES = [
    *("", "r2d-", "registry.example.org/binder/r2d-", "quay.io/org/", "localhost:5000/"),
    *("registry.example.org/binder.", "eo_hub/", "eo/r2d_", "eo/binder__", "ghcr.io/a/b-"),
]

# What must hold of what is accepted, written independently of the code under test.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})*")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
#: distribution's reference grammar: [host[:port]/]component(/component)*:tag
IMAGE_REFERENCE = re.compile(
    rf"(?P<name>(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r":(?P<tag>[\w][\w.-]{0,127})"
)


def decoded(text: str) -> str:
    while unquote(text) != text:
        text = unquote(text)
    return text


def assert_accepted_is_safe(spec: RepoSpec) -> None:
    """The invariants of every spec that parsing accepted."""
    scheme, sep, _ = spec.url.partition("://")
    assert sep
    assert scheme in ("https", "http")  # as written: git reads it so
    parts = urlsplit(spec.url)
    assert parts.username is None
    assert parts.password is None
    assert not ({"?", "#", "\\"} & set(spec.url + decoded(spec.url)))
    assert len(spec.url) <= MAX_URL
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        assert HOSTNAME.fullmatch(host), host
        assert not host.rsplit(".", 1)[-1].isdigit()  # not an IPv4 address in disguise
    for text in (spec.url, spec.repo, spec.ref):
        for form in (text, decoded(text)):
            assert not any(
                c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in form
            )
            assert unicodedata.normalize("NFKC", form) == form
    for segment in decoded(parts.path).split("/"):
        assert not segment.startswith("-")
        assert segment not in (".", "..")
    assert not spec.repo.startswith("-")
    assert ref_problem(spec.ref) is None
    for form in (spec.ref, decoded(spec.ref)):
        assert not form.startswith("-")
        assert ".." not in form
    assert PROVIDERS.parse_link(PROVIDERS.link(spec)) == spec


def assert_check_is_sound(check: RepoCheck, policy: RepoPolicy) -> None:
    """The invariants of every spec that policy allowed."""
    spec = check.spec
    parts = urlsplit(spec.url)
    assert check.host == parts.hostname
    assert parts.scheme == "https" or policy.allow_http
    fixed = PROVIDERS.get(spec.provider).fixed_host
    try:
        ipaddress.ip_address(check.host)
        is_ip = True
    except ValueError:
        is_ip = False
    assert check.needs_resolution is (not fixed and not is_ip)
    if is_ip and not fixed:
        assert address_allowed(check.host, allow_private=policy.allow_private_hosts)
    if policy is LISTS:
        host = check.host
        assert host in ("github.com", "gitlab.com") or host.endswith(".example.org")
        assert host != "evil.example.org"
        name = f"{host}/{decoded(parts.path).strip('/').removesuffix('.git')}".lower()
        assert not name.startswith("github.com/banned/")
        assert name != "git.example.org/secret/project"


def assert_images_are_valid(spec: RepoSpec, commit: str) -> None:
    for prefix in IMAGE_PREFIXES:
        name = repo_image_name(PROVIDERS, spec, commit, prefix)
        match = IMAGE_REFERENCE.fullmatch(name)
        assert match, name
        assert match["tag"] == commit
        assert len(match["name"]) <= 255


def follow(spec: RepoSpec, commit: str) -> None:
    """Everything that may follow an accepted spec: each policy, and the image names."""
    assert_accepted_is_safe(spec)
    assert_images_are_valid(spec, commit)
    for policy in POLICIES.values():
        check, refusal = attempt(lambda: policy.check(spec, PROVIDERS))  # noqa: B023
        if check is None:
            assert refusal is not None
            assert list(refusal.errors) == ["repo"]
            continue
        assert check.spec is spec
        assert_check_is_sound(check, policy)
