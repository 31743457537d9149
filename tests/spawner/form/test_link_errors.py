"""The launch-link error page: its title, its one-sentence reason and its actions."""

from __future__ import annotations

import importlib.util
import re

import pytest

from eohub.spawner.form.link_errors import (
    DEFAULT_TITLE,
    SERVER_NAME_MAX,
    SERVER_NAME_PATTERN,
    LinkErrorPage,
    NewServer,
    link_error_page,
    one_sentence,
    suggest_server_name,
    valid_server_name,
)

LINK = "/hub/eohub/launch/git/http%3A%2F%2F127.0.0.1%2Fdemo/main"


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        ("this repository cannot be launched", "This repository cannot be launched."),
        ("Done!", "Done!"),
        ("  two\n lines  ", "Two lines."),
        ("", "The launch link cannot be used."),
    ],
)
def test_the_reason_is_one_sentence(reason: str, sentence: str) -> None:
    assert one_sentence(reason) == sentence


@pytest.mark.parametrize(
    ("link", "taken", "name"),
    [
        ("gh/pangeo-data/pangeo-tutorial/main", (), "pangeo-tutorial"),
        ("gh/o/Repo.Name.git/main", ("", "repo-name"), "repo-name-2"),
        ("git/http%3A%2F%2F127.0.0.1%2Fdemo/main", ("demo", "demo-2"), "demo-3"),
        ("gh/o/2048/main", (), "launch-2048"),
        ("gh/o/___/main", (), "launch"),
        ("x", (), "launch"),
        ("gh/o/" + "a" * 80 + "/main", (), "a" * (SERVER_NAME_MAX - 4)),
    ],
)
def test_the_suggested_server_name_is_free_and_valid(
    link: str, taken: tuple[str, ...], name: str
) -> None:
    suggested = suggest_server_name(link, taken)
    assert suggested == name
    assert re.fullmatch(SERVER_NAME_PATTERN, suggested)
    assert len(suggested) <= SERVER_NAME_MAX


def page(
    status: int = 403, *, running: bool = False, room: bool = False, server: str = ""
) -> LinkErrorPage:
    return link_error_page(
        status,
        "this launch link cannot be used: group: not yours",
        hub_prefix="/hub/",
        username="ann@x",
        server_name=server,
        link_path=LINK,
        query={"filepath": "a b.ipynb", "server": server} if server else {"filepath": "a b"},
        running=running,
        room_for_server=room,
        taken=("", "demo"),
    )


def test_a_refusal_of_a_stopped_server_leads_back_to_its_form() -> None:
    shown = page(403, server="second")
    assert shown.title == "This launch is not allowed"
    assert shown.reason == "This launch link cannot be used: group: not yours."
    assert shown.form_url == "/hub/spawn/ann@x/second"
    assert (shown.stop_action, shown.new_server) == ("", None)
    assert page(418).title == DEFAULT_TITLE


def test_a_running_server_offers_to_stop_it_or_to_use_a_new_named_server() -> None:
    shown = page(409, running=True, room=True, server="demo")
    assert shown.title == "Your server is already running"
    assert shown.form_url == ""
    assert shown.stop_action == f"{LINK}?filepath=a%20b.ipynb&server=demo"
    assert shown.new_server == NewServer(LINK, {"filepath": "a b.ipynb"}, "demo-2")
    # No room for another named server (or named servers off): only the stop.
    assert page(409, running=True, room=False).new_server is None


def test_a_link_the_policy_refuses_offers_no_stop_even_when_the_server_runs() -> None:
    # Stopping the server would not help: the link is refused whatever runs.
    shown = page(403, running=True, room=True, server="demo")
    assert (shown.stop_action, shown.new_server, shown.form_url) == ("", None, "")
    assert page(400, running=True, room=True).stop_action == ""


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("second", True),
        ("a", True),
        ("my-server-2", True),
        ("a" * SERVER_NAME_MAX, True),
        ("a" * (SERVER_NAME_MAX + 1), False),
        ("", False),
        ("2nd", False),
        ("Second", False),
        ("my--server", False),
        ("server-", False),
        ("my_server", False),
        ("a/b", False),
        ('x" autofocus onfocus="alert(document.domain)', False),
        ("x%22", False),
        ("caf\u00e9", False),
    ],
)
def test_server_names_are_those_jupyterhub_6_accepts(name: str, valid: bool) -> None:
    assert valid_server_name(name) is valid
    if importlib.util.find_spec("jupyterhub.slugs") is not None:  # JupyterHub 6: its own rule
        from jupyterhub.slugs import is_valid_safe_slug

        assert is_valid_safe_slug(name) is valid
