"""Hostile specs never start git; the specs that are accepted reach it only after ``--``.

The corpus of ``tests/domain/repos/attack_cases.py``, and open-ended hypothesis input, go
down the whole production path: parse (a launch link or the form) -> ``RepoPolicy.check``
-> ``RefResolver.resolve``. :class:`FakeGit` stands in for git and DNS: it patches
``asyncio.create_subprocess_exec`` as ``eohub.adapters.git.refs`` calls it, recording
every argv, and ``socket.getaddrinfo`` under the event loop's resolver. The same argv
then runs real git against the loopback git http-backend.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eohub.adapters.git.refs import RefResolver, Resolved, ref_patterns
from eohub.domain.repos.policy import RepoCheck, RepoPolicy, address_allowed
from eohub.domain.repos.specs import RepoError, is_commit
from tests.domain.repos import attack_cases as attacks
from tests.domain.repos import hostile_input as hostile
from tests.support.git_server import Repo, git_http_server, make_repo

PUBLIC = "140.82.121.4"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
INTERNAL = "loopback, private or reserved address"


class _Process:
    """What ``create_subprocess_exec`` returns, for a git that lists ``out``."""

    def __init__(self, out: bytes) -> None:
        self.out = out
        self.returncode = 0
        self.pid = -1

    async def communicate(self) -> tuple[bytes, bytes]:
        return self.out, b""

    async def wait(self) -> int:
        return 0


class FakeGit:
    """git and DNS for one test: records each argv and name looked up.

    ``ls-remote`` lists :data:`COMMIT` for every ref pattern it is given; a name
    resolves to ``dns[name]``, else to ``default`` (an empty list: no such host).
    """

    def __init__(
        self, dns: Mapping[str, Sequence[str]] | None = None, default: Sequence[str] = (PUBLIC,)
    ) -> None:
        self.dns = dict(dns or {})
        self.default = tuple(default)
        self.argvs: list[list[str]] = []
        self.lookups: list[str] = []

    async def exec(self, *argv: str, **kwargs: Any) -> _Process:
        self.argvs.append(list(argv))
        patterns = argv[argv.index("--") + 2 :] if "--" in argv else ()
        return _Process("".join(f"{COMMIT}\t{p}\n" for p in patterns).encode())

    def getaddrinfo(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        self.lookups.append(host)
        addresses = self.dns.get(host, self.default)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = {True: socket.AF_INET6, False: socket.AF_INET}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    @contextmanager
    def installed(self, *, dns: bool = True) -> Iterator[FakeGit]:
        with mock.patch("eohub.adapters.git.refs.asyncio.create_subprocess_exec", self.exec):
            if not dns:
                yield self
                return
            with mock.patch.object(socket, "getaddrinfo", self.getaddrinfo):
                yield self


async def launch(
    resolver: RefResolver,
    policy: RepoPolicy,
    *,
    link: str | None = None,
    fields: tuple[str, ...] = (),
) -> tuple[RepoCheck, Resolved]:
    """Parse, check policy, resolve: the path a launch takes in the hub."""
    check = attacks.launch(policy, link=link, fields=fields)
    return check, await resolver.resolve(check)


#: Settings git may be given before ``--``: constants only. One added to the adapter is
#: reviewed here, since nothing a user wrote may reach git ahead of the dashes.
HARDENING = {
    "protocol.allow=never",
    "credential.helper=",
    "http.followRedirects=false",
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
}


def assert_argv_is_safe(argv: list[str], check: RepoCheck, address: str | None) -> None:
    """Only constant options before ``--`` (and the checked host's pin); the URL after."""
    end = argv.index("--")
    url = urlsplit(check.spec.url)
    assert url.scheme in ("https", "http")
    head = argv[:end]
    assert (head[0], head[-1]) == ("git", "ls-remote")
    options = head[1:-1]
    assert options[0::2] == ["-c"] * (len(options) // 2)
    settings = options[1::2]
    allowed_scheme = f"protocol.{url.scheme}.allow=always"
    required = {"protocol.allow=never", allowed_scheme, "credential.helper="}
    assert required | {"http.followRedirects=false"} <= set(settings)
    pins = [s for s in settings if s.startswith("http.curloptResolve=")]
    if check.needs_resolution:
        assert address is not None
        assert hostile.HOSTNAME.fullmatch(check.host)
        port = url.port or (443 if url.scheme == "https" else 80)
        pinned = f"[{address}]" if ":" in address else address
        assert pins == [f"http.curloptResolve={check.host}:{port}:{pinned}"]
    else:
        assert pins == []
    assert set(settings) - set(pins) <= HARDENING | {allowed_scheme}
    assert argv[end + 1 :] == [check.spec.url, *ref_patterns(check.spec.ref)]
    assert not any(a.startswith("-") for a in argv[end + 1 :])


# -- the corpus: refused before any git process or DNS lookup ----------------------------
REFUSED = [
    *(
        pytest.param("open", None, (p, repo, ref), field, id=f"form:{p}:{repo[:40]}:{ref[:40]}")
        for p, repo, ref, field, _ in attacks.FORM_ATTACKS
    ),
    *(
        pytest.param("open", link, (), field, id=f"link:{link[:80]}")
        for link, field, _ in attacks.LINK_ATTACKS + attacks.LINKED_FORM_ATTACKS
    ),
    *(
        pytest.param(policy, None, (p, repo, "main"), "repo", id=f"policy:{policy}:{repo}")
        for p, repo, policy, _ in attacks.POLICY_ATTACKS
    ),
]


@pytest.mark.parametrize(("policy", "link", "fields", "field"), REFUSED)
async def test_no_refused_corpus_entry_starts_git(
    policy: str, link: str | None, fields: tuple[str, ...], field: str
) -> None:
    resolver = RefResolver()
    with FakeGit().installed() as git, pytest.raises(RepoError) as caught:
        await launch(resolver, attacks.POLICIES[policy], link=link, fields=fields)
    assert caught.value.field == field
    assert (git.argvs, git.lookups, resolver.runs) == ([], [], 0)


@pytest.mark.parametrize(
    ("host", "addresses", "says"),
    [
        ("localhost", ["127.0.0.1", "::1"], INTERNAL),
        ("LocalHost", ["127.0.0.1"], INTERNAL),
        ("127.0.0.1.nip.io", ["127.0.0.1"], INTERNAL),
        ("metadata.google.internal", ["169.254.169.254"], INTERNAL),
        ("rebind.example.org", [PUBLIC, "10.0.0.1"], INTERNAL),  # every address counts
        ("cgnat.example.org", ["100.64.0.1"], INTERNAL),
        ("zero.example.org", ["0.0.0.0"], INTERNAL),  # noqa: S104 (refused, not bound)
        ("mapped.example.org", ["::ffff:127.0.0.1"], INTERNAL),
        ("sixtofour.example.org", ["2002:a9fe:a9fe::1"], INTERNAL),
        ("teredo.example.org", ["2001:0:4136:e378:8000:63bf:f5ff:fffe"], INTERNAL),
        ("sitelocal.example.org", ["fec0::1"], INTERNAL),
        ("linklocal.example.org", ["fe80::1%2"], INTERNAL),
        ("nowhere.invalid", [], "cannot be found"),
    ],
)
async def test_names_of_internal_hosts_are_refused_before_git_runs(
    host: str, addresses: list[str], says: str
) -> None:
    resolver = RefResolver()
    with FakeGit({host.lower(): addresses}).installed() as git, pytest.raises(RepoError) as caught:
        await launch(resolver, attacks.STRICT, fields=("git", f"https://{host}/a/b", "main"))
    assert says in caught.value.errors["repo"]
    assert (git.argvs, git.lookups, resolver.runs) == ([], [host.lower()], 0)


async def test_localhost_is_refused_by_real_resolution_too() -> None:
    resolver = RefResolver()
    with FakeGit().installed(dns=False) as git, pytest.raises(RepoError) as caught:
        await launch(resolver, attacks.STRICT, link="git/https%3A%2F%2Flocalhost%2Fa/main")
    assert INTERNAL in caught.value.errors["repo"]
    assert (git.argvs, resolver.runs) == ([], 0)


# -- accepted, however hostile they look: git sees them only after '--' ------------------
@pytest.mark.parametrize(
    ("link", "fields"),
    [
        (None, ("gh", "owner/repo", "\u2010\u2010upload-pack=x")),  # hyphens, not '-'
        (None, ("gh", "upload-pack/config", "u/--x")),
        (None, ("gh", "owner/repo.git", "x--upload-pack=touch")),
        (None, ("gl", "group/sub-project", "feature/-x")),
        (None, ("git", "https://example.org/upload-pack=x/config=core.sshCommand", "main")),
        (None, ("git", "HTTPS://Example.ORG:8443/a-/b--c.git", "refs/heads/main")),
        (None, ("git", "https://8.8.8.8/x", "HEAD")),
        (None, ("git", "https://[2606:4700::1111]/x", "v1.0")),
        (None, ("git", "https://example.org/a%2525b", "50%")),
        ("git/https%3A%2F%2Fexample.org%2Fu%253Dx/feature%252Fx", ()),
        ("gh/owner/repo/@x", ()),
    ],
)
async def test_accepted_specs_reach_git_only_after_the_dashes(
    link: str | None, fields: tuple[str, ...]
) -> None:
    resolver = RefResolver()
    with FakeGit().installed() as git:
        check, resolved = await launch(resolver, attacks.STRICT, link=link, fields=fields)
    assert resolved.commit == COMMIT
    assert resolver.runs == len(git.argvs) == 1
    assert git.lookups == ([check.host] if check.needs_resolution else [])
    assert_argv_is_safe(git.argvs[0], check, PUBLIC)
    for text in (check.spec.repo, check.spec.ref):
        assert not any(text in a for a in git.argvs[0][: git.argvs[0].index("--")])


async def test_a_commit_needs_no_git_at_all() -> None:
    resolver = RefResolver()
    with FakeGit().installed() as git:
        _, resolved = await launch(resolver, attacks.STRICT, fields=("gh", "o/r", COMMIT))
    assert (resolved.commit, git.argvs, git.lookups, resolver.runs) == (COMMIT, [], [], 0)


async def test_a_commit_on_an_internal_host_name_is_refused_all_the_same() -> None:
    # No git runs for a commit, but the builder fetches from the host next.
    resolver = RefResolver()
    internal = FakeGit({"git.internal.example.org": ["10.0.0.1"]})
    with internal.installed() as git, pytest.raises(RepoError) as caught:
        await launch(
            resolver,
            attacks.STRICT,
            fields=("git", "https://git.internal.example.org/a/b", COMMIT),
        )
    assert INTERNAL in caught.value.errors["repo"]
    assert (git.argvs, git.lookups) == ([], ["git.internal.example.org"])
    with FakeGit().installed() as git:
        _, resolved = await launch(
            resolver, attacks.STRICT, fields=("git", "https://example.org/a/b", COMMIT)
        )
    assert (resolved.commit, git.argvs, git.lookups) == (COMMIT, [], ["example.org"])


# -- hypothesis: the whole path, open-ended input ----------------------------------------
ADDRESSES = [PUBLIC, "2606:4700::1111", "10.0.0.1", "127.0.0.1", "::1", "169.254.169.254"]
# More plain git URLs than the domain tests draw: their host names are resolved here.
FIELDS = hostile.weighted(
    (1, hostile.FIELDS), (2, st.tuples(st.just("git"), hostile.URLS, hostile.REFS))
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    link=hostile.LINKS,
    fields=FIELDS,
    address=st.sampled_from(ADDRESSES),
    policy=st.sampled_from(sorted(attacks.POLICIES)),
)
async def test_any_input_starts_git_only_when_accepted_and_only_after_the_dashes(
    link: str, fields: tuple[str, str, str], address: str, policy: str
) -> None:
    chosen = attacks.POLICIES[policy]
    for way in ({"link": link}, {"fields": fields}):
        resolver = RefResolver()
        git = FakeGit(default=[address])
        with git.installed():
            try:
                check, resolved = await launch(resolver, chosen, **way)
            except RepoError as e:
                # Refused by parsing, policy or the address check: git never ran.
                event(f"refused: {', '.join(e.errors)}{' (address)' if git.lookups else ''}")
                assert (git.argvs, resolver.runs) == ([], 0)
                continue
        if check.needs_resolution:
            assert address_allowed(address, allow_private=chosen.allow_private_hosts)
        assert git.lookups == ([check.host] if check.needs_resolution else [])
        if is_commit(check.spec.ref):
            event("accepted: a commit, no git")
            assert (resolved.commit, git.argvs) == (check.spec.ref, [])
            continue
        event(f"accepted: git ran, resolving the host: {check.needs_resolution}")
        assert resolved.commit == COMMIT
        assert resolver.runs == len(git.argvs) == 1
        assert_argv_is_safe(git.argvs[0], check, address)


# -- real git over loopback: the same argv, and nothing git could run -------------------
LOOPBACK = RepoPolicy(allow_http=True, allow_private_hosts=True)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Repo, Repo]]:
    root = tmp_path_factory.mktemp("git")
    demo = make_repo(root)
    odd = make_repo(root, "upload-pack=touch.git")  # a name that looks like an option
    with git_http_server(root) as url:
        yield url, demo, odd


@contextmanager
def spy() -> Iterator[list[list[str]]]:
    """Record each argv and run the real git."""
    seen: list[list[str]] = []
    real = asyncio.create_subprocess_exec

    async def recording(*argv: str, **kwargs: Any) -> Any:
        seen.append(list(argv))
        return await real(*argv, **kwargs)

    with mock.patch("eohub.adapters.git.refs.asyncio.create_subprocess_exec", recording):
        yield seen


async def test_real_git_gets_hostile_looking_names_only_after_the_dashes(
    served: tuple[str, Repo, Repo],
) -> None:
    url, demo, odd = served
    resolver = RefResolver(timeout=10)
    with spy() as seen:
        check, resolved = await launch(
            resolver, LOOPBACK, fields=("git", f"{url}/{odd.name}", "main")
        )
        assert resolved.commit == odd.main
        with pytest.raises(RepoError) as missing:
            await launch(
                resolver, LOOPBACK, fields=("git", f"{url}/{demo.name}", "\u2010\u2010upload-pack")
            )
    assert "is not a branch or tag" in missing.value.errors["ref"]
    assert len(seen) == resolver.runs == 2
    for argv in seen:
        assert argv.index("--") == len(argv) - 5  # '--', the URL and three ref patterns
    assert_argv_is_safe(seen[0], check, None)


async def test_real_git_never_runs_for_the_cve_pattern(
    served: tuple[str, Repo, Repo], tmp_path: Path
) -> None:
    url, demo, _ = served
    marker = tmp_path / "pwned"
    repo = quote(f"{url}/{demo.name}", safe="")
    links = [
        f"git/{quote(f'--upload-pack=touch {marker}', safe='')}/main",
        f"git/{quote(f'ext::sh -c touch% {marker}', safe='')}/main",
        f"git/{repo}/{quote(f'--upload-pack=touch {marker}', safe='')}",
        f"git/{repo}/%252D%252Dupload-pack=touch",
        f"git/{quote(f'{url}/--upload-pack=touch', safe='')}/main",
    ]
    resolver = RefResolver(timeout=10)
    with spy() as seen:
        for link in links:
            with pytest.raises(RepoError):
                await launch(resolver, LOOPBACK, link=link)
    assert (seen, resolver.runs) == ([], 0)
    assert not marker.exists()
