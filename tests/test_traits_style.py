"""Every config option is declared and documented one way, so the reference reads alike."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from traitlets.config import Configurable

import eohub

PACKAGE = Path(eohub.__file__).parent
SINGLE_TICK = re.compile(r"(?<![`\w])`[^`\n]+`(?![`\w])")


def _configurable_classes() -> list[type[Configurable]]:
    for info in pkgutil.walk_packages(eohub.__path__, "eohub."):
        if ".migrations" not in info.name:
            importlib.import_module(info.name)
    found: set[type[Configurable]] = set()
    todo = [Configurable]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("eohub."):
                found.add(sub)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


CLASSES = _configurable_classes()


def test_the_classes_were_found() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"LDAPAuthenticator", "OIDCAuthenticator", "AccountingService"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_option_has_help_in_rst_markup(cls: type[Configurable]) -> None:
    for name, trait in cls.class_own_traits(config=True).items():
        help_text = trait.help or ""
        assert help_text.strip(), f"{cls.__name__}.{name} has no help"
        assert not SINGLE_TICK.search(help_text), (
            f"{cls.__name__}.{name}: write code as ``literal`` (RST), not `single`: "
            f"{SINGLE_TICK.search(help_text).group(0)}"  # type: ignore[union-attr]
        )


def _config_keywords(source: str) -> list[int]:
    return [
        call.lineno
        for call in ast.walk(ast.parse(source))
        if isinstance(call, ast.Call)
        and any(
            k.arg == "config" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in call.keywords
        )
        and not (isinstance(call.func, ast.Attribute) and call.func.attr == "tag")
    ]


def test_the_declaration_check_sees_the_keyword_form() -> None:
    assert _config_keywords("x = Unicode('', config=True, help='h')\n") == [1]
    assert _config_keywords("x = Unicode('', help='h').tag(config=True)\n") == []
    assert _config_keywords("client = AccountingClient(config=config)\n") == []


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_options_are_declared_with_tag(path: Path) -> None:
    assert _config_keywords(path.read_text()) == [], "declare options with .tag(config=True)"
