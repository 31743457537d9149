"""What eohub adds to the hub's own pages: templates that extend JupyterHub's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets.config.loader import LazyConfigValue

#: eohub's hub templates. Its pages extend JupyterHub's own (``templates/<name>.html``).
TEMPLATE_DIR = str(Path(__file__).parent / "templates")


def use_eohub_templates(c: Any) -> None:
    """Put :data:`TEMPLATE_DIR` in ``c.JupyterHub.template_paths``, after the site's own.

    JupyterHub's default list holds its own folder first, where ``page.html`` would win;
    a list that is set gets JupyterHub's folder added last. So the list is set here: the
    site's folders so far, then eohub's. With it, the Services menu shows a service's
    ``info["display_name"]`` ("Usage") instead of its name.
    """
    paths = c.JupyterHub.template_paths
    paths = paths.get_value([]) if isinstance(paths, LazyConfigValue) else list(paths)
    if TEMPLATE_DIR not in paths:
        c.JupyterHub.template_paths = [*paths, TEMPLATE_DIR]


__all__ = ["TEMPLATE_DIR", "use_eohub_templates"]
