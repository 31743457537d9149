"""The page a launch link shows when it cannot open the form: a reason and what to do.

It looks like the hub's own pages (``templates/eohub_link_error.html`` extends the hub's
``page.html``, so the user menu shows): a short title, the reason in one sentence, and
the actions that can help, as buttons:

- "Back to the launch form" (``/hub/spawn/<user>/<server>``), unless the server runs;
- "Stop the running server and launch": posts to the link itself, which stops the server
  and opens the link again;
- "Launch in a new named server": the same link with another ``server``, where named
  servers are allowed and the user's limit is not reached.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import quote

#: The page's title per HTTP status of the refusal.
TITLES = {
    400: "This launch link cannot be read",
    403: "This launch is not allowed",
    404: "Launch links are not available",
    409: "Your server is already running",
}
DEFAULT_TITLE = "This launch link cannot be opened"
#: Server names JupyterHub 6 accepts (a "safe slug"; JupyterHub 5 takes them too).
SERVER_NAME_PATTERN = "[a-z](-?[a-z0-9])*"
SERVER_NAME_MAX = 30
#: Why a server name is refused; it does not repeat the name, which may be anything.
INVALID_SERVER_NAME = (
    f"A server name has at most {SERVER_NAME_MAX} lower-case letters, digits and single "
    "dashes, and starts with a letter."
)
_NOT_NAME = re.compile(r"[^a-z0-9]+")
_SERVER_NAME = re.compile(SERVER_NAME_PATTERN)


def valid_server_name(name: str) -> bool:
    """Whether JupyterHub 6 lets a new named server be called ``name`` (its
    ``is_valid_safe_slug``). eohub refuses other names on JupyterHub 5 too: 5 takes
    almost any name, and one with a quote would break out of its spawn page's form."""
    return len(name) <= SERVER_NAME_MAX and _SERVER_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class NewServer:
    """The "Launch in a new named server" form: a GET of the link with ``server``."""

    action: str
    query: Mapping[str, str]
    suggested: str


@dataclass(frozen=True)
class LinkErrorPage:
    """What the error page shows; ``stop_action`` posts to stop the running server."""

    status: int
    title: str
    reason: str
    form_url: str = ""
    stop_action: str = ""
    new_server: NewServer | None = None
    server_name: str = ""


def one_sentence(reason: str) -> str:
    """``reason`` as one sentence: capitalised, with a final full stop."""
    text = " ".join(reason.split())
    if not text:
        return "The launch link cannot be used."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def suggest_server_name(link: str, taken: Collection[str]) -> str:
    """A free server name for ``link`` (``<provider>/<spec>``): its repository's name."""
    parts = [p for p in re.split(r"/|%2F", link, flags=re.IGNORECASE) if p]
    repo = parts[-2] if len(parts) >= 2 else ""
    base = _NOT_NAME.sub("-", repo.lower().removesuffix(".git")).strip("-")
    if not base[:1].isalpha():
        base = f"launch-{base}".strip("-")
    base = base[: SERVER_NAME_MAX - 4].rstrip("-")
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    return name


def hub_path(hub_prefix: str, *parts: str) -> str:
    """``hub_prefix`` joined with the escaped ``parts`` (empty ones left out)."""
    escaped = [quote(p, safe="@~") for p in parts if p]
    return "/".join([hub_prefix.rstrip("/"), *escaped])


def link_error_page(
    status: int,
    reason: str,
    *,
    hub_prefix: str,
    username: str,
    server_name: str,
    link_path: str,
    query: Mapping[str, str],
    running: bool,
    room_for_server: bool,
    taken: Collection[str] = (),
) -> LinkErrorPage:
    """The page of a refused launch link, with the actions that fit.

    ``link_path`` and ``query`` are the link's (the page posts the stop there);
    ``running`` says whether the link's server runs, ``room_for_server`` whether the
    user may create another named server, and ``taken`` which names they have. Stopping
    the server, or another server, is offered only when the running server is the
    refusal (409): a link the policy refuses would be refused again.
    """
    link_query = {k: v for k, v in query.items() if k != "server"}
    busy = running and status == 409
    new_server = None
    if busy and room_for_server:
        suggested = suggest_server_name(link_path, taken)
        new_server = NewServer(link_path, link_query, suggested)
    stop_action = ""
    if busy:
        stop_action = link_path + ("?" + _encode(query) if query else "")
    return LinkErrorPage(
        status=status,
        title=TITLES.get(status, DEFAULT_TITLE),
        reason=one_sentence(reason),
        form_url="" if running else hub_path(hub_prefix, "spawn", username, server_name),
        stop_action=stop_action,
        new_server=new_server,
        server_name=server_name,
    )


def _encode(query: Mapping[str, str]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())


__all__ = [
    "INVALID_SERVER_NAME",
    "SERVER_NAME_MAX",
    "SERVER_NAME_PATTERN",
    "LinkErrorPage",
    "NewServer",
    "hub_path",
    "link_error_page",
    "one_sentence",
    "suggest_server_name",
    "valid_server_name",
]
