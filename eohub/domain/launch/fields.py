"""Reading one entry of the launch config, with the key path in every error.

The admin writes environments, sizes and volumes as plain data (dicts in
``jupyterhub_config.py``, or YAML). :class:`Entry` reads one such mapping field by field
and raises :class:`LaunchConfigError` at the first problem, naming its key path
(``environments.pangeo.sizes[1]``) so that a hub that will not start says where to look.
``None`` (an empty YAML value) counts as "not given" everywhere.
"""

from __future__ import annotations

import math
import posixpath
import re
import string
from collections.abc import Collection, Mapping
from typing import NoReturn

from eohub.domain.accounting.resources import parse_bytes
from eohub.domain.fields import describe
from eohub.domain.identity.groups import valid_group_name
from eohub.domain.launch.options import name_problem

MAX_TEXT = 255
MAX_DESCRIPTION = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # descriptions may hold newlines
#: The placeholders a path or claim template may use.
TEMPLATE_FIELDS = frozenset({"username", "group"})


class LaunchConfigError(ValueError):
    """The launch config is invalid; the message starts with the offending key path."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


def check_name(value: object, where: str, what: str) -> str:
    """``value`` as the name of an environment, size or volume, or an error at ``where``."""
    if not isinstance(value, str):
        raise LaunchConfigError(where, f"{what} names must be strings, not {describe(value)}")
    problem = name_problem(value)
    if problem:
        raise LaunchConfigError(where, f"{what} name {describe(value)} {problem}")
    return value


def template_problem(template: str) -> str | None:
    """Why ``template`` is not a valid path template; None if it is.

    Only ``{username}`` and ``{group}`` may appear, with no format spec or conversion:
    a template must not be a way to reach other attributes or to inject text.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        return f"is not a valid template ({e}); write a literal brace as '{{{{' or '}}}}'"
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            allowed = " and ".join(f"{{{f}}}" for f in sorted(TEMPLATE_FIELDS, reverse=True))
            return f"may use only the placeholders {allowed}, not {{{field}}}"
    return None


def sample(template: str) -> str:
    """The template with placeholders filled by a plain sample, to check the rest."""
    return template.format(username="user", group="group")


def absolute_path_problem(path: str) -> str | None:
    """Why ``path`` is not a clean absolute path; None if it is."""
    if not path.startswith("/"):
        return "must be an absolute path"
    if _CONTROL.search(path):
        return "must not contain control characters"
    if ".." in path.split("/"):
        return "must not contain '..'"
    if posixpath.normpath(path) != path:
        return f"must be normalised: {posixpath.normpath(path)!r}"
    return None


class Entry:
    """One mapping of the config (``where`` is its key path), read field by field."""

    def __init__(self, data: object, where: str, allowed: Collection[str]) -> None:
        if not isinstance(data, Mapping):
            raise LaunchConfigError(where, f"must be a mapping of settings, not {describe(data)}")
        unknown = sorted(describe(k) for k in data if k not in allowed)
        if unknown:
            raise LaunchConfigError(
                where,
                f"unknown key {unknown[0]}; allowed keys: {', '.join(sorted(allowed))}",
            )
        self.data: Mapping[str, object] = data
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"

    def fail(self, key: str, message: str) -> NoReturn:
        raise LaunchConfigError(self.path(key), message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(
        self,
        key: str,
        default: str | None = None,
        *,
        required: bool = False,
        max_len: int = MAX_TEXT,
        pattern: re.Pattern[str] | None = None,
        multiline: bool = False,
    ) -> str | None:
        """A string, or ``default`` when not given (an error when ``required``)."""
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(key, "is required")
            return default
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {describe(value)}")
        control = _TEXT_CONTROL if multiline else _CONTROL
        if not value or len(value) > max_len or control.search(value):
            self.fail(key, f"must be 1 to {max_len} characters, without control characters")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"{describe(value)} is not allowed here")
        return value

    def description(self) -> str:
        """The entry's ``description``: free text for the form, newlines allowed."""
        return self.text("description", "", max_len=MAX_DESCRIPTION, multiline=True) or ""

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false, not {describe(value)}")
        return value

    def number(self, key: str, *, maximum: float) -> float | None:
        """A number above 0 and at most ``maximum``; None when not given."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, not {describe(value)}")
        if (isinstance(value, float) and not math.isfinite(value)) or not 0 < value <= maximum:
            self.fail(key, f"must be above 0 and at most {maximum:g}")
        return float(value)

    def integer(self, key: str, *, minimum: int, maximum: int) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, not {describe(value)}")
        if not minimum <= value <= maximum:
            self.fail(key, f"must be between {minimum} and {maximum}")
        return value

    def byte_size(self, key: str) -> int | None:
        """Bytes from ``4294967296``, ``"4G"`` or ``"512Mi"`` (powers of 1024); None if absent."""
        value = self.data.get(key)
        if value is None:
            return None
        try:
            result = parse_bytes(value)
        except ValueError as e:
            self.fail(key, str(e))
        if result <= 0:
            self.fail(key, "must be above 0 bytes")
        return result

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of non-empty strings, without repeats; () when not given."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            self.fail(key, f"must be a list, not {describe(value)}")
        seen: list[str] = []
        for i, item in enumerate(value):
            where = f"{self.path(key)}[{i}]"
            if not isinstance(item, str) or not item or _CONTROL.search(item):
                raise LaunchConfigError(where, f"must be a non-empty string, not {describe(item)}")
            if item in seen:
                raise LaunchConfigError(where, f"{describe(item)} is listed twice")
            seen.append(item)
        return tuple(seen)

    def groups(self, key: str) -> frozenset[str]:
        names = self.strings(key)
        for i, name in enumerate(names):
            if not valid_group_name(name):
                raise LaunchConfigError(
                    f"{self.path(key)}[{i}]", f"{describe(name)} is not a valid group name"
                )
        return frozenset(names)

    def string_map(self, key: str, key_pattern: re.Pattern[str], what: str) -> dict[str, str]:
        """A mapping of ``what`` (keys matching ``key_pattern``) to strings."""
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(key, f"must be a mapping of {what} to strings, not {describe(value)}")
        result: dict[str, str] = {}
        for k, v in value.items():
            where = f"{self.path(key)}.{k}"
            if not isinstance(k, str) or not key_pattern.fullmatch(k):
                self.fail(key, f"{describe(k)} is not a valid {what}")
            if not isinstance(v, str) or "\x00" in v or len(v) > 65536:
                raise LaunchConfigError(where, f"must be a string, not {describe(v)}")
            result[k] = v
        return result

    def template(self, key: str, default: str | None = None) -> str | None:
        """A string that may use the placeholders of :data:`TEMPLATE_FIELDS`."""
        value = self.text(key, default, max_len=1024)
        if value is not None and (problem := template_problem(value)):
            self.fail(key, f"{describe(value)} {problem}")
        return value

    def absolute_path(self, key: str, *, required: bool = False, template: bool = False) -> str:
        value = (self.template(key) if template else self.text(key, max_len=1024)) or ""
        if not value:
            if required:
                self.fail(key, "is required")
            return ""
        problem = absolute_path_problem(sample(value) if template else value)
        if problem:
            self.fail(key, f"{describe(value)} {problem}")
        return value


__all__ = [
    "TEMPLATE_FIELDS",
    "Entry",
    "LaunchConfigError",
    "absolute_path_problem",
    "check_name",
    "sample",
    "template_problem",
]
