"""Content-Security-Policy headers as eohub writes them: ``frame-ancestors`` set, every
other directive kept, one canonical header name (see :func:`fold_csp`). Pure text work,
shared by :mod:`eohub.embedding` and the hub's start-up check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CSP = "Content-Security-Policy"


def parse_policy(policy: str) -> list[tuple[str, str]]:
    """A CSP header as (directive, value) pairs, in order; names lower-cased."""
    directives = []
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives.append((name.lower(), value.strip()))
    return directives


def frame_ancestors(policy: str) -> list[str]:
    """The sources of a policy's ``frame-ancestors`` (the first one: browsers ignore the
    rest), without ``'none'``, which eohub replaces."""
    for name, value in parse_policy(policy):
        if name == "frame-ancestors":
            return [s for s in value.split() if s.lower() != "'none'"]
    return []


def with_frame_ancestors(policy: str, sources: list[str], *, report_uri: str = "") -> str:
    """``policy`` with its ``frame-ancestors`` set to ``sources`` and its other directives
    kept; ``report-uri`` added when it has none and ``report_uri`` is given."""
    others = [(n, v) for n, v in parse_policy(policy) if n != "frame-ancestors"]
    if report_uri and not any(n == "report-uri" for n, _ in others):
        others.append(("report-uri", report_uri))
    directives = [("frame-ancestors", " ".join(sources)), *others]
    return "; ".join(f"{name} {value}".strip() for name, value in directives)


def combine_policies(policies: Iterable[str]) -> str:
    """One policy from several: the ``frame-ancestors`` sources of all (``'none'`` only
    if none has another), and each other directive as the first policy gives it."""
    sources: list[str] = []
    framed = False
    directives: dict[str, str] = {}
    for policy in policies:
        for name, value in parse_policy(policy):
            framed = framed or name == "frame-ancestors"
            if name != "frame-ancestors":
                directives.setdefault(name, value)
        sources += [s for s in frame_ancestors(policy) if s not in sources]
    first = [("frame-ancestors", " ".join(sources) or "'none'")] if framed else []
    return "; ".join(f"{n} {v}".strip() for n, v in [*first, *directives.items()])


def fold_csp(headers: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """``headers`` without any spelling of the CSP header's name, and one policy made of
    all of them, ``Content-Security-Policy``'s own directives first.

    HTTP header names are case-insensitive, but the single-user server's defaults are
    not: ``jupyterhub-singleuser`` adds ``Content-Security-Policy: frame-ancestors
    'none'`` next to a ``content-security-policy`` it does not recognize, and
    jupyter_server sends that one. eohub therefore writes only the canonical name.
    """
    spellings = sorted((k for k in headers if k.lower() == CSP.lower()), key=lambda k: k != CSP)
    others = {k: v for k, v in headers.items() if k.lower() != CSP.lower()}
    return others, combine_policies(str(headers[k]) for k in spellings)
