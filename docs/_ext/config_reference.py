"""Generate the config reference from eohub's ``jupyterhub.*`` entry points.

At ``builder-inited`` this writes one MyST page per registered class under
``reference/config/gen/`` with an ``autoconfigurable`` directive (from autodoc-traits),
and an index page listing them. Nobody hand-writes trait lists: a class appears in the
docs as soon as it is registered as an entry point in setup.cfg.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GROUP_TITLES = {
    "jupyterhub.authenticators": "Authenticators",
    "jupyterhub.spawners": "Spawners",
    "jupyterhub.services": "Services",
    "eohub.configurables": "Other configurable classes",
}

HOW_TO_USE = {
    "jupyterhub.authenticators": 'set `c.JupyterHub.authenticator_class = "{name}"`.',
    "jupyterhub.spawners": 'set `c.JupyterHub.spawner_class = "{name}"`.',
    "jupyterhub.services": "run it with the `{name}` command; set its options as "
    "`c.{cls}.<option>` in `eohub_accounting_config.py` or on the command line.",
    "eohub.configurables": "set its options as `c.{cls}.<option>` in the config file of "
    "the program that uses it (see the option help).",
}


@dataclass(frozen=True)
class Entry:
    group: str
    name: str
    target: str  # "module:Class"

    @property
    def dotted(self) -> str:
        module, _, cls = self.target.partition(":")
        return f"{module}.{cls}"


def eohub_entries(distribution: str = "eohub") -> list[Entry]:
    """The distribution's entry points in the groups above, sorted by group and name."""
    eps = importlib.metadata.distribution(distribution).entry_points
    return sorted(
        (Entry(ep.group, ep.name, ep.value) for ep in eps if ep.group in GROUP_TITLES),
        key=lambda e: (list(GROUP_TITLES).index(e.group), e.name),
    )


def class_page(entry: Entry) -> str:
    cls = entry.dotted.rsplit(".", 1)[1]
    return (
        f"# {cls}\n\n"
        f"Entry point `{entry.name}` in `{entry.group}`: "
        + HOW_TO_USE[entry.group].format(name=entry.name, cls=cls)
        + "\n\n```{eval-rst}\n"
        f".. autoconfigurable:: {entry.dotted}\n"
        "   :noindex:\n"
        "```\n"
    )


def index_page(entries: Iterable[Entry]) -> str:
    entries = list(entries)
    lines = ["# Configurable classes", ""]
    if not entries:
        lines += [
            "No eohub class is registered as a `jupyterhub.*` entry point yet. Each one",
            "appears here, with every trait and its help text, once setup.cfg registers it.",
        ]
        return "\n".join(lines) + "\n"
    for group, title in GROUP_TITLES.items():
        names = [e for e in entries if e.group == group]
        if names:
            lines += [f"## {title}", ""]
            lines += [f"- [`{e.name}`: {e.dotted}]({page_name(e)}.md)" for e in names]
            lines.append("")
    lines += ["```{toctree}", ":hidden:", ""] + [page_name(e) for e in entries] + ["```"]
    return "\n".join(lines) + "\n"


def page_name(entry: Entry) -> str:
    return entry.name


def write_reference(outdir: Path, entries: list[Entry]) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in outdir.glob("*.md"):
        stale.unlink()
    for entry in entries:
        (outdir / f"{page_name(entry)}.md").write_text(class_page(entry))
    (outdir / "index.md").write_text(index_page(entries))


# Help text inherited from JupyterHub, oauthenticator and KubeSpawner is written for
# their own docs: it links to targets and intersphinx inventories defined there. Here
# such links render as plain text or literals, so the build needs neither their pages
# nor the network.
_EXTERNAL_ROLE = re.compile(r":(?:external:py:\w+|ref):`~?([^`]+)`")
_NAMED_REFERENCE = re.compile(r"`([^`<>]+)`_(?!_)")


def plain_inherited_links(line: str) -> str:
    return _NAMED_REFERENCE.sub(r"\1", _EXTERNAL_ROLE.sub(r"``\1``", line))


def on_process_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    lines[:] = [plain_inherited_links(line) for line in lines]


def on_builder_inited(app: Any) -> None:
    write_reference(Path(app.srcdir) / "reference" / "config" / "gen", eohub_entries())


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", on_builder_inited)
    app.connect("autodoc-process-docstring", on_process_docstring)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
