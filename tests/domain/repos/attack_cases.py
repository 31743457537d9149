"""The corpus of hostile repository specs and the invariants of what may be accepted.

Shared by ``test_attacks.py`` (the domain's ways in) and
``tests/adapters/git/test_refs_attacks.py`` (the same corpus driven on to git).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings

from eohub.domain.fields import FieldErrors
from eohub.domain.repos.policy import RepoCheck, RepoPolicy
from eohub.domain.repos.specs import MAX_URL, RepoError, RepoProviders

PROVIDERS = RepoProviders.default()
#: The most permissive policy: what these refuse, parsing refused on its own.
OPEN = RepoPolicy(allow_http=True, allow_private_hosts=True)
STRICT = RepoPolicy()
LISTS = RepoPolicy(
    allowed_hosts=("github.com", "gitlab.com", "*.example.org"),
    denied_hosts=("evil.example.org",),
    denied_repos=("github.com/banned/*", "git.example.org/secret/project"),
)
POLICIES = {"open": OPEN, "strict": STRICT, "lists": LISTS}
T = TypeVar("T")
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the corpus --------------------------------------------------------------------------
# Form attacks: (provider, repo, ref, field, words the message holds).
FORM_ATTACKS = [
    # CVE-2021-39159: a repository or ref that git would read as an option.
    ("git", "--upload-pack=touch /tmp/pwned", "main", "repo", "must not start with '-'"),
    ("git", "-u touch /tmp/pwned", "main", "repo", "must not start with '-'"),
    ("git", "--config=core.sshCommand=touch /tmp/pwned", "main", "repo", "start with '-'"),
    ("git", "-oProxyCommand=touch /tmp/pwned", "main", "repo", "must not start with '-'"),
    ("git", "%2D%2Dupload-pack=x", "main", "repo", "must be an https:// URL"),
    ("git", "%252D%252Dupload-pack=x", "main", "repo", "must be an https:// URL"),
    ("git", "https://github.com/--upload-pack=x", "main", "repo", "part starting with '-'"),
    ("git", "https://github.com/a/%2D%2Dupload-pack", "main", "repo", "starting with '-'"),
    ("git", "https://github.com/a/%252D%252Dupload-pack", "main", "repo", "starting with '-'"),
    ("gh", "--upload-pack=x/repo", "main", "repo", "must be '<owner>/<repo>' on GitHub"),
    ("gh", "owner/--upload-pack=x", "main", "repo", "invalid repository name"),
    ("gh", "owner/%2D%2Dupload-pack", "main", "repo", "invalid repository name"),
    ("gl", "--upload-pack=x/y", "main", "repo", "'<namespace>/<project>' on GitLab"),
    ("gl", "group/-u", "main", "repo", "'<namespace>/<project>' on GitLab"),
    ("gh", "owner/repo", "--upload-pack=touch /tmp/pwned", "ref", "must not start with '-'"),
    ("gh", "owner/repo", "-u", "ref", "must not start with '-'"),
    ("git", "https://github.com/a/b", "--config=core.pager=x", "ref", "start with '-'"),
    ("gh", "owner/repo", "%2D%2Dupload-pack=x", "ref", "decodes to '--upload-pack=x', which"),
    ("gh", "owner/repo", "%252D%252Dupload-pack", "ref", "decodes to '--upload-pack', which"),
    ("gh", "owner/repo", "\uff0d\uff0dupload-pack", "ref", "look-alike characters"),
    ("gh", "owner/repo", "\ufe63\ufe63upload-pack", "ref", "look-alike characters"),
    # Other transports and local paths.
    ("git", "ext::sh -c touch% /tmp/pwned", "main", "repo", "'<transport>::' form"),
    ("git", "EXT::sh -c id", "main", "repo", "'<transport>::' form"),
    ("git", "fd::17", "main", "repo", "'<transport>::' form"),
    ("git", "fd::3/foo", "main", "repo", "'<transport>::' form"),
    ("git", "https+ext::x", "main", "repo", "'<transport>::' form"),
    ("git", "file:///etc", "main", "repo", "local path (file://)"),
    ("git", "FILE:///etc/passwd", "main", "repo", "local path (file://)"),
    ("git", "file:/etc", "main", "repo", "must be an https:// URL"),
    ("git", "/etc/passwd", "main", "repo", "must be an https:// URL"),
    ("git", "../repo", "main", "repo", "must be an https:// URL"),
    ("git", "ssh://git@github.com/a/b", "main", "repo", "must be an https:// URL"),
    ("git", "ssh://-oProxyCommand=touch/a", "main", "repo", "must be an https:// URL"),
    ("git", "git://github.com/a/b", "main", "repo", "must be an https:// URL"),
    ("git", "git+ssh://github.com/a/b", "main", "repo", "must be an https:// URL"),
    ("git", "ftp://example.org/a", "main", "repo", "must be an https:// URL"),
    ("git", "github.com:a/b", "main", "repo", "must be an https:// URL"),
    ("git", "git@github.com:a/b", "main", "repo", "must be an https:// URL"),
    # User-info, and '@' tricks that hide the real host.
    ("git", "https://user:pass@github.com/a/b", "main", "repo", "user name or password"),
    ("git", "https://token@github.com/a/b", "main", "repo", "user name or password"),
    ("git", "https://github.com@evil.org/a", "main", "repo", "user name or password"),
    ("git", "https://github.com:443@evil.org/a", "main", "repo", "user name or password"),
    ("git", "https://evil.org%2F@github.com/a", "main", "repo", "user name or password"),
    ("git", "https://github.com%40evil.org/a", "main", "repo", "percent-encoded host"),
    ("git", "https://evil.org#@github.com/a", "main", "repo", "query or a fragment"),
    ("git", "https://evil.org?@github.com/a", "main", "repo", "query or a fragment"),
    ("git", "https://github.com/a/b?upload-pack=x", "main", "repo", "query or a fragment"),
    # CR, LF, NUL and tab, raw and percent-encoded once or twice.
    ("git", "https://github.com/a/b\r\nHost: evil", "main", "repo", "control characters"),
    ("git", "https://github.com/a/b%0D%0AHost:%20evil", "main", "repo", "control characters"),
    ("git", "https://github.com/a/b%250D%250A", "main", "repo", "control characters"),
    ("git", "https://github.com/a/b\x00", "main", "repo", "control characters"),
    ("git", "https://github.com/a/b%00", "main", "repo", "control characters"),
    ("git", "https://github.com/a/b%2500", "main", "repo", "control characters"),
    ("git", "https://github.com/a\tb", "main", "repo", "control characters"),
    ("gh", "owner/repo", "main\r\nX-Injected: 1", "ref", "control characters"),
    ("gh", "owner/repo", "main\x00", "ref", "control characters"),
    ("gh", "owner/repo", "ma\tin", "ref", "control characters"),
    ("gh", "owner/repo", "main%0a", "ref", "control characters"),
    ("gh", "owner/repo", "main%250a", "ref", "control characters"),
    # Unicode: direction overrides, zero-width, fullwidth and other look-alikes.
    ("git", "https://github.com/a/b\u202egpj.exe", "main", "repo", "control characters"),
    ("git", "https://github.com/a\u200b/b", "main", "repo", "control characters"),
    ("gh", "owner/repo", "main\u202e", "ref", "control characters"),
    ("gh", "owner/repo", "ma\u200bin", "ref", "control characters"),
    ("gh", "owner/repo", "\ufeffmain", "ref", "control characters"),
    ("gh", "owner\u200b/repo", "main", "repo", "must be '<owner>/<repo>' on GitHub"),
    ("git", "https://github.com\uff0fevil.org/a", "main", "repo", "not a valid URL"),
    ("git", "https://evil.org/a\uff0fb", "main", "repo", "look-alike characters"),
    ("git", "https://evil.org/a/%EF%BC%8F", "main", "repo", "look-alike characters"),
    ("git", "https://evil.org/a/\u2025/b", "main", "repo", "look-alike characters"),
    ("gh", "owner/repo", "feature\uff0fx", "ref", "look-alike characters"),
    ("gh", "owner/repo", "\u2025/x", "ref", "look-alike characters"),
    ("git", "https://github\u3002com/a/b", "main", "repo", "host name of ASCII"),
    ("git", "https://github\uff0ecom/a/b", "main", "repo", "host name of ASCII"),
    ("git", "https://g\u0456thub.com/a/b", "main", "repo", "host name of ASCII"),
    # Path traversal in repositories and refs.
    ("gh", "../../etc", "main", "repo", "must be '<owner>/<repo>' on GitHub"),
    ("gh", "owner/..", "main", "repo", "invalid repository name"),
    ("gl", "group/../../admin", "main", "repo", "'<namespace>/<project>' on GitLab"),
    ("gl", "..%2F..%2Fadmin", "main", "repo", "'<namespace>/<project>' on GitLab"),
    ("git", "https://github.com/a/../../b", "main", "repo", "'..' path parts"),
    ("git", "https://github.com/a/./b", "main", "repo", "'.' or '..' path parts"),
    ("git", "https://github.com/a/%2e%2e/b", "main", "repo", "'..' path parts"),
    ("git", "https://github.com/a/%252e%252e/b", "main", "repo", "'..' path parts"),
    ("git", "https://github.com/a/b%2F..%2F..%2Fc", "main", "repo", "'..' path parts"),
    ("gh", "owner/repo", "../../x", "ref", "must not contain '..'"),
    ("gh", "owner/repo", "refs/../x", "ref", "must not contain '..'"),
    ("gh", "owner/repo", "refs/heads/../../HEAD", "ref", "must not contain '..'"),
    ("gh", "owner/repo", "%2E%2E/x", "ref", "decodes to '../x', which must not contain '..'"),
    ("gh", "owner/repo", "%252E%252E%252Fx", "ref", "decodes to '../x', which"),
    # Refs git check-ref-format refuses.
    ("gh", "owner/repo", "main@{1}", "ref", "must not contain '@{'"),
    ("gh", "owner/repo", "@", "ref", "must not be '@'"),
    ("gh", "owner/repo", "main.lock", "ref", "may end with '.lock'"),
    ("gh", "owner/repo", "a.lock/b", "ref", "may end with '.lock'"),
    ("gh", "owner/repo", "main.", "ref", "must not end with '.'"),
    ("gh", "owner/repo", "a//b", "ref", "contain '//'"),
    ("gh", "owner/repo", "/main", "ref", "must not start or end with '/'"),
    ("gh", "owner/repo", "main/", "ref", "must not start or end with '/'"),
    ("gh", "owner/repo", ".hidden", "ref", "may start with '.'"),
    ("gh", "owner/repo", "a/.b", "ref", "may start with '.'"),
    ("gh", "owner/repo", "HEAD~1", "ref", "must not contain '~'"),
    ("gh", "owner/repo", "HEAD^", "ref", "must not contain '^'"),
    ("gh", "owner/repo", "a:b", "ref", "must not contain ':'"),
    ("gh", "owner/repo", "a?", "ref", "must not contain '?'"),
    ("gh", "owner/repo", "a*", "ref", "must not contain '*'"),
    ("gh", "owner/repo", "a[b", "ref", "must not contain '['"),
    ("gh", "owner/repo", "a\\b", "ref", "must not contain '\\\\'"),
    ("gh", "owner/repo", "main@%7B1%7D", "ref", "decodes to 'main@{1}', which"),
    # Backslashes, raw and encoded.
    ("git", "https://github.com\\evil.org/a", "main", "repo", "must not contain '\\'"),
    ("git", "https:\\\\github.com/a/b", "main", "repo", "must be an https:// URL"),
    ("git", "https://github.com/a\\b", "main", "repo", "must not contain '\\'"),
    ("git", "https://github.com/a/..%5C..%5Cb", "main", "repo", "must not contain '\\'"),
    ("git", "https://github.com/a/%255C", "main", "repo", "must not contain '\\'"),
    ("git", "https://github.com%5C@evil.org/a", "main", "repo", "must not contain '\\'"),
    # Overlong input.
    ("gh", "owner/repo", "x" * 256, "ref", "must be at most 255 characters"),
    ("git", "https://github.com/" + "a" * MAX_URL, "main", "repo", "at most 2048 characters"),
    ("gh", "o" * 40 + "/repo", "main", "repo", "must be '<owner>/<repo>' on GitHub"),
    ("gh", "owner/" + "r" * 101, "main", "repo", "invalid repository name"),
    ("gl", "/".join(["g" * 200] * 11), "main", "repo", "at most 2048 characters"),
    ("gl", "group/" + "p" * 256, "main", "repo", "'<namespace>/<project>' on GitLab"),
    # Addresses in unusual forms, which resolvers read as an internal address.
    ("git", "https://0x7f.1/x", "main", "repo", "IP address in its usual form"),
    ("git", "https://2130706433/x", "main", "repo", "IP address in its usual form"),
    ("git", "https://0177.0.0.1/x", "main", "repo", "IP address in its usual form"),
    ("git", "https://127.1/x", "main", "repo", "IP address in its usual form"),
    ("git", "https://0x7f000001/x", "main", "repo", "IP address in its usual form"),
    ("git", "https://017700000001/x", "main", "repo", "IP address in its usual form"),
    ("git", "https://127.000.000.001/x", "main", "repo", "IP address in its usual form"),
    ("git", "https://[fe80::1%25eth0]/x", "main", "repo", "an IPv6 zone"),
    ("git", "https://[fe80::1%eth0]/x", "main", "repo", "an IPv6 zone"),
    ("git", "https://169.254.169.254./x", "main", "repo", "host name of ASCII"),
    ("git", "https://localhost./x", "main", "repo", "host name of ASCII"),
    ("git", "https://[v1.x]/x", "main", "repo", "bracketed host that is not an IPv6"),
    ("git", "https://[127.0.0.1]/x", "main", "repo", "not a valid URL"),
    # Trailing dots and ports.
    ("git", "https://github.com./a/b", "main", "repo", "host name of ASCII"),
    ("git", "https://github.com:0/a", "main", "repo", "port from 1 to 65535"),
    ("git", "https://github.com:99999/a", "main", "repo", "not a valid URL"),
    ("git", "https://github.com:80:443/a", "main", "repo", "not a valid URL"),
    ("git", "https://github.com:+443/a", "main", "repo", "not a valid URL"),
    ("git", "https://github.com:0x1bb/a", "main", "repo", "not a valid URL"),
    ("git", "https://github.com:-1/a", "main", "repo", "not a valid URL"),
    ("git", "https://github.com: 443/a", "main", "repo", "control characters"),
    ("svn", "a/b", "main", "provider", "is not a provider; use gh, gl, git"),
]

# Link attacks: (``<provider>/<spec>`` as it arrives, still percent-encoded, field, words).
LINK_ATTACKS = [
    ("gh/owner/repo/--upload-pack=touch /tmp/pwned", "ref", "must not start with '-'"),
    ("gh/owner/repo/%2D%2Dupload-pack=x", "ref", "'--upload-pack=x' must not start with '-'"),
    ("gh/owner/repo/%252D%252Dx", "ref", "decodes to '--x', which must not start with '-'"),
    ("gh/owner/repo/%252D%252Dupload-pack=x", "ref", "decodes to '--upload-pack=x', which"),
    ("gh/%2D%2Dupload-pack=x/repo/main", "repo", "must be '<owner>/<repo>' on GitHub"),
    ("gl/%2D%2Dupload-pack%3Dx%2Fy/main", "repo", "'<namespace>/<project>' on GitLab"),
    ("gl/%252D%252Dupload-pack%2Fy/main", "repo", "'<namespace>/<project>' on GitLab"),
    ("gl/group%2Fproject/%2D%2Dupload-pack", "ref", "must not start with '-'"),
    ("gl/group%2Fproject/%252D%252Dupload-pack", "ref", "decodes to '--upload-pack'"),
    ("git/%2D%2Dupload-pack%3Dtouch%20%2Ftmp%2Fpwned/main", "repo", "must not start with '-'"),
    ("git/%252D%252Dupload-pack%253Dx/main", "repo", "must be an https:// URL"),
    ("git/https%3A%2F%2Fgithub.com%2Fa%2Fb/%2D%2Dupload-pack", "ref", "start with '-'"),
    ("git/https%3A%2F%2Fgithub.com%2Fa%2Fb/%252D%252Dupload-pack", "ref", "decodes to '--"),
    ("git/https%3A%2F%2Fgithub.com%2F%252D%252Du%2Fb/main", "repo", "starting with '-'"),
    ("git/ext%3A%3Ash%20-c%20touch%25%20%2Ftmp%2Fpwned/main", "repo", "'<transport>::'"),
    ("git/fd%3A%3A17/main", "repo", "'<transport>::' form"),
    ("git/file%3A%2F%2F%2Fetc/main", "repo", "local path (file://)"),
    ("git/ssh%3A%2F%2Fgit%40github.com%2Fa%2Fb/main", "repo", "must be an https:// URL"),
    ("git/git%3A%2F%2Fgithub.com%2Fa%2Fb/main", "repo", "must be an https:// URL"),
    ("git/github.com%3Aa%2Fb/main", "repo", "must be an https:// URL"),
    ("git/https%3A%2F%2Fuser%3Apass%40github.com%2Fa%2Fb/main", "repo", "user name"),
    ("git/https%3A%2F%2Fgithub.com%40evil.org%2Fa/main", "repo", "user name or password"),
    ("git/https%3A%2F%2Fgithub.com%2Fa%0D%0AHost%3A%20evil/main", "repo", "control char"),
    ("git/https%3A%2F%2Fgithub.com%2Fa%2Fb/main%0D%0AX%3A1", "ref", "control characters"),
    ("gh/owner/repo/main%00", "ref", "control characters"),
    ("gh/owner/repo/ma%09in", "ref", "control characters"),
    ("gh/owner/repo/main%E2%80%AEtxt", "ref", "control characters"),
    ("gh/owner/repo/ma%E2%80%8Bin", "ref", "control characters"),
    ("gh/owner/repo/feature%EF%BC%8Fx", "ref", "look-alike characters"),
    ("gh/owner/repo/feature\uff0fx", "ref", "look-alike characters"),
    ("git/https%3A%2F%2Fgithub%E3%80%82com%2Fa/main", "repo", "host name of ASCII"),
    ("gh/../../etc/main", "repo", "must be '<owner>/<repo>' on GitHub"),
    ("gh/owner/repo/..%2F..%2Fx", "ref", "must not contain '..'"),
    ("gh/owner/repo/refs/../x", "ref", "must not contain '..'"),
    ("gh/owner/repo/%2e%2e", "ref", "'..' must not contain '..'"),
    ("gl/..%2F..%2Fetc/main", "repo", "'<namespace>/<project>' on GitLab"),
    ("gl/group%2F..%2Fadmin/main", "repo", "'<namespace>/<project>' on GitLab"),
    ("git/https%3A%2F%2Fgithub.com%2Fa%2F..%2F..%2Fb/main", "repo", "'..' path parts"),
    ("git/https%3A%2F%2Fgithub.com%2Fa%2F%25252e%25252e%2Fb/main", "repo", "'..' path parts"),
    ("gh/owner/repo/main@{1}", "ref", "must not contain '@{'"),
    ("gh/owner/repo/main@%7B1%7D", "ref", "'main@{1}' must not contain '@{'"),
    ("gh/owner/repo/main.lock", "ref", "may end with '.lock'"),
    ("gh/owner/repo/main.", "ref", "must not end with '.'"),
    ("gh/owner/repo/a//b", "ref", "contain '//'"),
    ("gh/owner/repo/" + "x" * 256, "ref", "must be at most 255 characters"),
    ("git/" + quote("https://github.com/" + "a" * MAX_URL, safe="") + "/main", "repo", "2048"),
    ("git/https%3A%2F%2F127.1%2Fx/main", "repo", "IP address in its usual form"),
    ("git/https%3A%2F%2F%5Bv1.x%5D%2Fx/main", "repo", "bracketed host"),
    ("git/https%3A%2F%2Fgithub.com%5C%40evil.org%2Fa/main", "repo", "must not contain '\\'"),
    ("svn/a/b/main", "provider", "is not a provider"),
    ("../gh/owner/repo/main", "provider", "is not a provider"),
    ("gh/owner/repo", "spec", "must be '<owner>/<repo>/<ref>'"),
    ("gl/group%2Fproject", "spec", "'<url-escaped repository>/<ref>'"),
    ("gh", "spec", "must be '<owner>/<repo>/<ref>'"),
]

# Well-formed specs that policy refuses: (provider, repo, policy, words); field "repo".
INTERNAL = "loopback, private or reserved address"
POLICY_ATTACKS = [
    # SSRF: internal addresses as IP literals, also embedded in IPv6.
    *(
        ("git", f"https://{host}/x", "strict", INTERNAL)
        for host in (
            "127.0.0.1",
            "[::1]",
            "169.254.169.254",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::ffff:169.254.169.254]",
            "[0:0:0:0:0:ffff:127.0.0.1]",
            "[::127.0.0.1]",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",  # noqa: S104 (an address to refuse, not to bind)
            "[::]",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "[fe80::1]",
            "[fc00::1]",
            "[fd00:ec2::254]",
            "[fec0::1]",
            "[ff02::1]",
            "[2002:7f00:1::]",  # 6to4 around 127.0.0.1
            "[2002:a9fe:a9fe::]",  # 6to4 around 169.254.169.254
            "[2002:a00:1::]",  # 6to4 around 10.0.0.1
            "[2001:0:4136:e378:8000:63bf:f5ff:fffe]",  # Teredo, client 10.0.0.1
            "[64:ff9b::a9fe:a9fe]",  # NAT64 around 169.254.169.254
            "127.0.0.1:8443",
            "[::1]:443",
        )
    ),
    ("git", "http://127.0.0.1/x", "strict", "must use https://"),
    ("git", "https://0.0.0.0/x", "open", INTERNAL),  # not even with private hosts allowed
    ("git", "https://224.0.0.1/x", "open", INTERNAL),
    ("git", "http://github.com/a/b", "strict", "must use https://"),
    ("git", "HTTP://github.com/a/b", "strict", "must use https://"),
    # Allow- and deny-list evasion: case, ports, look-alike hosts, encoded paths.
    ("git", "https://EVIL.example.ORG/a/b", "lists", "on evil.example.org are not allowed"),
    ("git", "https://evil.example.org:443/a/b", "lists", "on evil.example.org are not"),
    ("git", "https://evil.example.org:8443/a/b", "lists", "on evil.example.org are not"),
    ("git", "https://github.com.evil.org/a/b", "lists", "on github.com.evil.org are not"),
    ("git", "https://example.org.evil.org/a/b", "lists", "on example.org.evil.org are not"),
    ("git", "https://gitlab.example.net/a/b", "lists", "on gitlab.example.net are not"),
    ("git", "https://8.8.8.8/a/b", "lists", "on 8.8.8.8 are not allowed"),
    ("gh", "banned/repo", "lists", "github.com/banned/repo is not allowed here"),
    ("gh", "Banned/Repo", "lists", "github.com/banned/repo is not allowed here"),
    ("gh", "banned/repo.git", "lists", "github.com/banned/repo is not allowed here"),
    ("git", "https://GitHub.com/BANNED/repo.git/", "lists", "github.com/banned/repo is not"),
    ("git", "https://github.com/b%61nned/repo", "lists", "github.com/banned/repo is not"),
    ("git", "https://github.com/banned%2Frepo", "lists", "github.com/banned/repo is not"),
    ("git", "https://github.com/banned/repo%2Egit", "lists", "github.com/banned/repo is not"),
    ("git", "https://git.example.org/secret/%70roject", "lists", "/secret/project is not"),
    ("git", "https://git.example.org/secret/project%252Egit", "lists", "project is not"),
    ("git", "https://git.example.org:443/secret/project.git", "lists", "project is not"),
]


def refused(call: Callable[[], object], field: str, says: str) -> None:
    """``call()`` raises a RepoError on ``field`` alone, with a short, printable message."""
    with pytest.raises(RepoError) as caught:
        call()
    error = caught.value
    assert isinstance(error, FieldErrors)
    assert error.field == field
    assert list(error.errors) == [field]
    message = error.errors[field]
    assert says in message, message
    assert message.isprintable(), message
    assert len(message) <= 200, message


def launch(
    policy: RepoPolicy, *, link: str | None = None, fields: tuple[str, ...] = ()
) -> RepoCheck:
    """Parse a link, or else the form's fields, then check policy: as the hub does."""
    spec = PROVIDERS.parse_link(link) if link is not None else PROVIDERS.from_fields(*fields)
    return policy.check(spec, PROVIDERS)


def attempt(call: Callable[[], T]) -> tuple[T | None, RepoError | None]:
    """``call()``'s result, or the RepoError it raised."""
    try:
        return call(), None
    except RepoError as e:
        return None, e


def as_link(provider: str, repo: str, ref: str) -> str | None:
    """The launch link that carries the same repository and ref, if one can."""
    chosen = PROVIDERS.providers.get(provider)
    if chosen is None:
        return f"{provider}/{quote(repo, safe='')}/{quote(ref, safe='')}"
    spec = chosen.join_spec(repo, ref)
    if spec != spec.strip("/"):
        return None  # a link's outer slashes are not part of it
    try:
        same = chosen.split_spec(spec) == (repo, ref)
    except RepoError:
        same = False
    return f"{provider}/{spec}" if same else None


LINKED_FORM_ATTACKS = [
    (link, field, says)
    for provider, repo, ref, field, says in FORM_ATTACKS
    if (link := as_link(provider, repo, ref)) is not None
]
