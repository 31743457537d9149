"""The one schema for a launch's ``user_options``, whichever way they arrive.

The launch form, ``/hub/spawn?...`` query arguments and the REST API's ``user_options``
all end up in :func:`parse_options`: the form and the query string (both
``dict[str, list[str]]``) first go through :func:`form_to_options`, which gives them the
shape a REST client sends. Parsing is syntax only: it needs no config, and it reports
every bad field at once so that the hub can answer one 400 that lists them all. Whether
a well-formed choice is *allowed* is :mod:`eohub.domain.launch.policy`'s question.

The name and start-page rules defined here are also the rules for the admin's config
(:mod:`eohub.domain.launch.config`), so that anything the config can name, a request can
name too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from urllib.parse import unquote

from eohub.domain.fields import FieldErrors, describe
from eohub.domain.identity.groups import valid_group_name

#: Names of environments, sizes and volumes: safe in URLs, labels, form ids and paths.
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
NAME_RULE = (
    "must be 1 to 63 lowercase letters, digits, '.', '_' or '-', starting with a letter or a digit"
)
MAX_URLPATH = 1024
MAX_REPO = 2048
MAX_REF = 255
MAX_VOLUMES = 64
# At most this many unknown keys are reported: a 400 need not echo a huge body back.
MAX_UNKNOWN_REPORTED = 20
# RFC 3986 path and query characters, without quotes, '#' or spaces.
_URLPATH = re.compile(r"/[A-Za-z0-9._~!$&()*+,;=:@%/?-]*")
_URLPATH_PUNCTUATION = "/ . _ ~ - ! $ & ( ) * + , ; = : @ % ?"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
PROVIDER = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class OptionsError(FieldErrors):
    """Launch options that cannot be used; ``errors`` maps each field to what is wrong.

    Both parsing (:func:`parse_options`) and policy
    (:func:`eohub.domain.launch.policy.authorize`) raise it, so the hub turns either
    into the same 400 with field errors.
    """


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return names.get(type(value), type(value).__name__)


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot name an environment, size or volume; None if it can."""
    return None if NAME.fullmatch(value) else NAME_RULE


def urlpath_problem(value: str) -> str | None:
    """Why ``value`` cannot be a server's start page (``/lab``, ``/rstudio/``); None if ok.

    JupyterHub redirects the browser to it, so it must stay a path on the user's own
    server: no scheme, no ``//`` (a protocol-relative URL), no backslash (browsers read it
    as ``/``), no ``..``, and none of these hidden behind percent-encoding either.
    """
    if len(value) > MAX_URLPATH:
        return f"must be at most {MAX_URLPATH} characters"
    decoded = unquote(value)
    if not value.startswith("/"):
        return "must start with '/'"
    if any(unicodedata.category(c) == "Cc" for c in value + decoded):
        return "must not contain control characters"
    for text in (value, decoded):
        if "//" in text or "\\" in text:
            return "must be a path on your server: no '//' or '\\'"
        if ".." in text:
            return "must not contain '..'"
        if _SCHEME.match(text.lstrip("/")):
            return "must be a path on your server, not a URL with a scheme"
    if not _URLPATH.fullmatch(value):
        return f"may contain only letters, digits and the characters {_URLPATH_PUNCTUATION}"
    return None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_json_type(value)}")
    return value


def _checked(problem_of: Callable[[str], str | None]) -> Callable[[object], str]:
    """A field parser: a string for which ``problem_of`` finds no problem."""

    def parse(value: object) -> str:
        text = _text(value)
        problem = problem_of(text)
        if problem:
            raise ValueError(problem)
        return text

    return parse


_name = _checked(name_problem)


def _group(value: object) -> str:
    text = _text(value)
    if not valid_group_name(text):
        raise ValueError(
            "must be a group name of 1 to 255 characters, without control characters "
            "or surrounding spaces"
        )
    return text


def _visible_text(value: object, limit: int) -> str:
    text = _text(value).strip()
    if len(text) > limit:
        raise ValueError(f"must be at most {limit} characters")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise ValueError("must not contain spaces or control characters")
    return text


def _repo(value: object) -> str:
    # Syntax only; which repositories are allowed, and how the provider reads it, is
    # the policy's question (eohub.domain.repos.specs and repo_policy).
    return _visible_text(value, MAX_REPO)


def _ref(value: object) -> str:
    return _visible_text(value, MAX_REF)


def _provider(value: object) -> str:
    text = _text(value)
    if not PROVIDER.fullmatch(text):
        raise ValueError("must be a provider key such as 'gh', 'gl' or 'git'")
    return text


def filepath_problem(value: str) -> str | None:
    """Why ``value`` cannot be a file to open in a repository; None if it can.

    It is a path relative to the repository's root, so it must not climb out of it; it
    is percent-encoded where it becomes part of a URL, so spaces and the like are fine.
    It becomes part of the server's start page, so it follows that rule on ``..`` too
    (:func:`urlpath_problem`): anywhere, not only as a whole path segment.
    """
    if len(value) > MAX_URLPATH:
        return f"must be at most {MAX_URLPATH} characters"
    decoded = unquote(value)
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value + decoded):
        return "must not contain control characters"
    for text in (value, decoded):
        if text.startswith("/") or "\\" in text or "//" in text:
            return "must be a path inside the repository, such as 'notebooks/intro.ipynb'"
        if ".." in text:
            return "must not contain '..'"
    return None


def _volumes(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of volume names, not {_json_type(value)}")
    if len(value) > MAX_VOLUMES:
        raise ValueError(f"must name at most {MAX_VOLUMES} volumes")
    names: list[str] = []
    for i, item in enumerate(value):
        try:
            name = _name(item)
        except ValueError as e:
            raise ValueError(f"item {i}: {e}") from None
        if name in names:
            raise ValueError(f"names volume {name!r} twice")
        names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class Field:
    """How to read one option: ``parse`` raises ValueError with the message to show."""

    parse: Callable[[object], object]
    multiple: bool = False  # a form sends it as several values (checkboxes)


#: The options a launch takes. ``repo``, ``ref``, ``provider`` and ``filepath`` name
#: what to build for an environment with ``repository: true``.
FIELDS: dict[str, Field] = {
    "environment": Field(_name),
    "size": Field(_name),
    "group": Field(_group),
    "volumes": Field(_volumes, multiple=True),
    "urlpath": Field(_checked(urlpath_problem)),
    "provider": Field(_provider),
    "repo": Field(_repo),
    "ref": Field(_ref),
    "filepath": Field(_checked(filepath_problem)),
}
#: The options that only a repository launch takes.
REPO_FIELDS = ("provider", "repo", "ref", "filepath")


@dataclass(frozen=True)
class LaunchRequest:
    """What a user asked for: well-formed, not yet allowed. ``None`` means not given.

    A field left out is filled in by policy (the default environment, the first size
    that fits...); ``volumes=()`` and ``volumes=None`` both mean no optional volume.
    """

    environment: str | None = None
    size: str | None = None
    group: str | None = None
    volumes: tuple[str, ...] | None = None
    urlpath: str | None = None
    provider: str | None = None
    repo: str | None = None
    ref: str | None = None
    filepath: str | None = None

    @property
    def names_repository(self) -> bool:
        """Whether any repository option was given."""
        return any(getattr(self, k) is not None for k in REPO_FIELDS)

    def to_user_options(self) -> dict[str, object]:
        """The canonical, JSON-safe options: only the fields that were given."""
        result: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                result[f.name] = list(value) if isinstance(value, tuple) else value
        return result


def form_to_options(formdata: Mapping[str, object]) -> dict[str, object]:
    """Give form data or query arguments (``{key: [values]}``) the shape REST sends.

    Empty values mean "not given". A single-valued option sent twice keeps both values,
    as a list, so that :func:`parse_options` reports it instead of one silently winning.
    Keys that are not options are passed on for the parser to report; ``_xsrf`` (the
    form's CSRF token) is dropped.
    """
    options: dict[str, object] = {}
    for key, raw in formdata.items():
        if key == "_xsrf":
            continue
        items = raw if isinstance(raw, list | tuple) else [raw]
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in items]
        values = [v for v in values if v != ""]
        field = FIELDS.get(key)
        if not values:
            continue
        if field is not None and field.multiple:
            options[key] = values
        else:
            options[key] = values[0] if len(values) == 1 else values
    return options


def parse_options(raw: Mapping[str, object]) -> LaunchRequest:
    """Check the syntax of raw options; raise :class:`OptionsError` naming every bad field.

    ``None`` and ``""`` mean "not given", as an empty form field does.
    """
    if not isinstance(raw, Mapping):
        raise OptionsError({"user_options": f"must be an object, not {_json_type(raw)}"})
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    unknown = [key for key in raw if key not in FIELDS]
    for key in unknown[:MAX_UNKNOWN_REPORTED]:
        label = key if isinstance(key, str) and len(key) <= 64 else describe(key)
        errors[label] = f"is not a launch option; the options are {', '.join(FIELDS)}"
    for key, field in FIELDS.items():
        value = raw.get(key)
        if value is None or value == "":
            continue
        try:
            values[key] = field.parse(value)
        except ValueError as e:
            errors[key] = str(e)
    if errors:
        raise OptionsError(errors)
    return LaunchRequest(**values)  # type: ignore[arg-type]


__all__ = [
    "FIELDS",
    "MAX_REF",
    "MAX_REPO",
    "MAX_URLPATH",
    "MAX_VOLUMES",
    "NAME",
    "NAME_RULE",
    "PROVIDER",
    "REPO_FIELDS",
    "Field",
    "LaunchRequest",
    "OptionsError",
    "describe",
    "filepath_problem",
    "form_to_options",
    "name_problem",
    "parse_options",
    "urlpath_problem",
]
