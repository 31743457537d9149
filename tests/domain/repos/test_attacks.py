"""Hostile repository specs are refused, whichever way they come in.

A fixed corpus of known attacks goes through every way in: a launch link
(``RepoProviders.parse_link``), the form (``RepoProviders.from_fields``) and the admin's
policy (``RepoPolicy.check``). It holds the CVE-2021-39159 pattern (BinderHub's git
provider passed a repository or ref that git read as an option), other git transports,
encoding, control-character and Unicode tricks, path traversal, refs git refuses,
overlong input, SSRF addresses and allow/deny-list evasion. Each must fail with a
RepoError (a FieldErrors, so a 400 with field errors) naming the right field in words
a scientist can read. Hypothesis then feeds open-ended input to the same ways in and
checks everything that is accepted: the invariants are written out here, independently
of the code under test. ``tests/adapters/git/test_refs_attacks.py`` drives the same
corpus on to git.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eohub.domain.fields import FieldErrors
from eohub.domain.repos.images import PREFIX, image_name, prefix_problem, repo_image_name
from eohub.domain.repos.policy import RepoCheck, RepoPolicy, address_allowed
from eohub.domain.repos.specs import MAX_URL, RepoError, RepoProviders, RepoSpec, ref_problem

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


@pytest.mark.parametrize(("provider", "repo", "ref", "field", "says"), FORM_ATTACKS)
def test_form_attacks_are_refused(
    provider: str, repo: str, ref: str, field: str, says: str
) -> None:
    refused(lambda: launch(OPEN, fields=(provider, repo, ref)), field, says)


LINKED_FORM_ATTACKS = [
    (link, field, says)
    for provider, repo, ref, field, says in FORM_ATTACKS
    if (link := as_link(provider, repo, ref)) is not None
]


@pytest.mark.parametrize(("link", "field", "says"), LINK_ATTACKS + LINKED_FORM_ATTACKS)
def test_link_attacks_are_refused(link: str, field: str, says: str) -> None:
    refused(lambda: launch(OPEN, link=link), field, says)


@pytest.mark.parametrize(("provider", "repo", "policy", "says"), POLICY_ATTACKS)
def test_policy_refuses_internal_addresses_and_list_evasion(
    provider: str, repo: str, policy: str, says: str
) -> None:
    spec = PROVIDERS.from_fields(provider, repo, "main")
    refused(lambda: launch(POLICIES[policy], fields=(provider, repo, "main")), "repo", says)
    refused(lambda: launch(POLICIES[policy], link=PROVIDERS.link(spec)), "repo", says)


def test_the_same_hosts_and_repositories_are_allowed_when_written_plainly() -> None:
    # The lists above refuse the tricks, not everything: their plain neighbours pass.
    for provider, repo in [
        ("gh", "pangeo-data/pangeo-docker-images"),
        ("gl", "group/sub-project"),
        ("git", "https://GIT.example.org:8443/eo/tools.git"),
        ("git", "https://github.com/unbanned/repo"),
        ("git", "https://git.example.org/secret/project2"),
    ]:
        check = launch(LISTS, fields=(provider, repo, "main"))
        assert check.spec.url.startswith("https://")
    # Site-local and other internal addresses only where the admin allows private hosts.
    check = launch(OPEN, fields=("git", "http://[fec0::1]/x", "main"))
    assert (check.host, check.needs_resolution) == ("fec0::1", False)


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


@SETTINGS
@given(link=LINKS, commit=COMMITS)
def test_any_link_is_refused_or_safe(link: str, commit: str) -> None:
    spec, refusal = attempt(lambda: PROVIDERS.parse_link(link))
    if spec is None:
        assert refusal is not None
        assert set(refusal.errors) <= {"provider", "spec", "repo", "ref"}
        return
    follow(spec, commit)


@SETTINGS
@given(fields=FIELDS, commit=COMMITS)
def test_any_form_is_refused_or_safe(fields: tuple[str, str, str], commit: str) -> None:
    spec, refusal = attempt(lambda: PROVIDERS.from_fields(*fields))
    if spec is None:
        assert refusal is not None
        assert set(refusal.errors) <= {"provider", "repo", "ref"}
        return
    follow(spec, commit)


@SETTINGS
@given(
    host=st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
    private=st.booleans(),
)
def test_any_ip_literal_is_refused_or_allowed_by_address_allowed(host: str, private: bool) -> None:
    policy = RepoPolicy(allow_private_hosts=private)
    check, refusal = attempt(lambda: launch(policy, fields=("git", f"https://{host}/x", "main")))
    if check is None:
        assert refusal is not None
        assert INTERNAL in refusal.errors["repo"]
        assert not address_allowed(host.strip("[]"), allow_private=private)
        return
    assert address_allowed(check.host, allow_private=private)
    ip = ipaddress.ip_address(check.host)
    assert not ip.is_multicast
    assert not ip.is_unspecified
    assert private or not (ip.is_loopback or ip.is_private or ip.is_link_local)


@SETTINGS
@given(
    slug=st.text(max_size=300) | st.sampled_from(["", "_", "-", "_group-x", ".x", "\u00e9"]),
    prefix=st.from_regex(PREFIX, fullmatch=True),
    commit=COMMITS,
)
def test_any_slug_and_accepted_prefix_make_a_valid_image_reference(
    slug: str, prefix: str, commit: str
) -> None:
    if prefix_problem(prefix) is not None:
        return
    match = IMAGE_REFERENCE.fullmatch(image_name(prefix, slug, commit))
    assert match
    assert match["tag"] == commit
    assert len(match["name"]) <= 255


@pytest.mark.parametrize(
    "prefix", ["a//", "a/./", "a/-b/", "a..", "a/.", "a.-", "registry.example.org//r2d-"]
)
def test_prefixes_that_cannot_start_an_image_name_are_refused(prefix: str) -> None:
    assert prefix_problem(prefix) is not None


def test_the_invariants_catch_what_they_should() -> None:
    # The oracle itself: a spec built around the parser fails it.
    bad = RepoSpec("git", "https://x.org/-u", "https://x.org/-u", "main")
    with pytest.raises(AssertionError):
        assert_accepted_is_safe(bad)
    assert not IMAGE_REFERENCE.fullmatch("quay.io/org/-5fgroup:" + "0" * 40)
    assert IMAGE_REFERENCE.fullmatch("localhost:5000/a/b--c:" + "0" * 40)
