"""The layers of DESIGN.md hold: the domain is pure, adapters never reach up."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import eohub

PACKAGE = Path(eohub.__file__).parent
IO_LIBRARIES = (
    "jupyterhub",
    "tornado",
    "sqlalchemy",
    "alembic",
    "ldap3",
    "kubernetes",
    "kubernetes_asyncio",
    "kubespawner",
    "oauthenticator",
    "requests",
    "httpx",
    "aiohttp",
    "psycopg",
    "pymysql",
    "traitlets",
)
PLUGIN_PACKAGES = ("eohub.auth", "eohub.spawner", "eohub.accounting")


def modules_under(folder: str) -> list[str]:
    return sorted(
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in (PACKAGE / folder).rglob("*.py")
    )


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_importing_the_domain_layer_loads_no_io_library() -> None:
    # A fresh interpreter, so nothing the test runner imported can hide a leak.
    code = (
        "import importlib, sys\n"
        f"for m in {modules_under('domain')!r}: importlib.import_module(m)\n"
        f"leaked = sorted(n for n in sys.modules if n.split('.')[0] in {IO_LIBRARIES!r})\n"
        "print(','.join(leaked))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"eohub.domain imported I/O libraries: {done.stdout}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "domain").rglob("*.py")), ids=str)
def test_domain_modules_import_only_the_standard_library(path: Path) -> None:
    for name in imported_names(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("eohub.domain"), (
            f"{path.name} imports {name}: the domain layer takes only the standard library"
        )


@pytest.mark.parametrize("path", sorted((PACKAGE / "adapters").rglob("*.py")), ids=str)
def test_adapters_do_not_import_plugin_packages(path: Path) -> None:
    for name in imported_names(path):
        assert not name.startswith(PLUGIN_PACKAGES), (
            f"{path.name} imports {name}: adapters sit below the plugin packages"
        )


def test_the_guard_catches_a_leak(tmp_path: Path) -> None:
    # The AST check must see both import forms, or the tests above prove nothing.
    leaky = tmp_path / "leaky.py"
    leaky.write_text("import tornado.web\nfrom sqlalchemy import select\nfrom . import sibling\n")
    assert imported_names(leaky) == {"tornado.web", "sqlalchemy"}
