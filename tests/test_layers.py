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
    "psycopg2",
    "pymysql",
    "traitlets",
)
PLUGIN_PACKAGES = ("eohub.auth", "eohub.spawner", "eohub.accounting", "eohub.storage")


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


# -- directions between the rooms --------------------------------------------------------

#: (importer, imported, why): no module under the first may import one under the second.
FORBIDDEN = [
    ("eohub.domain.accounting", "eohub.domain.launch", "accounting sits below launch"),
    ("eohub.domain.accounting", "eohub.domain.repos", "accounting knows no repositories"),
    ("eohub.domain.reports", "eohub.domain.launch", "reports read the ledger only"),
    ("eohub.domain.reports", "eohub.domain.repos", "reports read the ledger only"),
    ("eohub.domain.repos", "eohub.domain.launch", "launch uses repos, not the reverse"),
    ("eohub.domain.identity", "eohub.domain.launch", "identity is the bottom room"),
    ("eohub.domain.identity", "eohub.domain.accounting", "identity is the bottom room"),
    ("eohub.domain.identity", "eohub.domain.repos", "identity is the bottom room"),
    ("eohub.accounting.service", "eohub.accounting.app", "handlers get a ServiceContext"),
    ("eohub.accounting.client", "eohub.accounting.service", "the client runs in the hub"),
    ("eohub.accounting.client", "eohub.accounting.app", "the client runs in the hub"),
    ("eohub.accounting.exports", "eohub.accounting.service", "exports run without the service"),
    ("eohub.spawner.form", "eohub.spawner.mixin", "the form renders a LaunchContext"),
    ("eohub.spawner.form", "eohub.spawner.kube", "the form renders a LaunchContext"),
    ("eohub.spawner.form", "eohub.spawner.local", "the form renders a LaunchContext"),
]


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, type-checking imports included."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(graph: dict[str, set[str]]) -> list[str]:
    def under(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    return [
        f"{importer} imports {imported}: {why}"
        for importer, targets in sorted(graph.items())
        for imported in sorted(targets)
        for low, high, why in FORBIDDEN
        if under(importer, low) and under(imported, high)
    ]


def test_no_import_circles_between_eohub_modules() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def test_the_rooms_depend_one_way() -> None:
    assert violations(import_graph(PACKAGE)) == []


def test_the_direction_checks_fail_on_planted_violations(tmp_path: Path) -> None:
    root = tmp_path / "eohub"
    files = {
        "__init__.py": "",
        "accounting/__init__.py": "",
        "accounting/app.py": "from eohub.accounting.service import handlers\n",
        "accounting/service/__init__.py": "",
        "accounting/service/handlers.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from eohub.accounting.app import AccountingService\n"
        ),
        "spawner/__init__.py": "",
        "spawner/mixin.py": "from .form import render\n",
        "spawner/form/__init__.py": "",
        "spawner/form/render.py": "from ..mixin import QuotaSpawnerMixin\n",
        "domain/__init__.py": "",
        "domain/accounting/__init__.py": "",
        "domain/accounting/quota.py": "from eohub.domain.launch import budget\n",
        "domain/launch/__init__.py": "",
        "domain/launch/budget.py": "from eohub.domain.accounting.quota import Limits\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = import_graph(root)
    assert cycles(graph) == [
        ["eohub.accounting.app", "eohub.accounting.service.handlers"],
        ["eohub.domain.accounting.quota", "eohub.domain.launch.budget"],
        ["eohub.spawner.form.render", "eohub.spawner.mixin"],
    ]
    assert violations(graph) == [
        "eohub.accounting.service.handlers imports eohub.accounting.app:"
        " handlers get a ServiceContext",
        "eohub.domain.accounting.quota imports eohub.domain.launch: accounting sits below launch",
        "eohub.domain.accounting.quota imports eohub.domain.launch.budget:"
        " accounting sits below launch",
        "eohub.spawner.form.render imports eohub.spawner.mixin: the form renders a LaunchContext",
    ]
