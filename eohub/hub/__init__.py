"""What eohub adds to the hub's own pages: templates that extend JupyterHub's.

- ``page.html``: the Services menu names a service by its ``info["display_name"]``.
- ``home.html``: each running server's environment, size, charged group, time running,
  time left before its maximum duration, time idle and idle limit, and budget left; why
  each stopped server last stopped; and a link to the usage pages (:mod:`eohub.hub.home`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets.config.loader import LazyConfigValue

from eohub.hub.home import home_page

#: eohub's hub templates. Its pages extend JupyterHub's own (``templates/<name>.html``).
TEMPLATE_DIR = str(Path(__file__).parent / "templates")


#: The name eohub's home page finds its data under in ``c.JupyterHub.template_vars``.
HOME_VAR = "eohub_home"


def use_eohub_templates(c: Any) -> None:
    """Put :data:`TEMPLATE_DIR` in ``c.JupyterHub.template_paths``, after the site's own,
    and the home page's data (:func:`eohub.hub.home.home_page`) in
    ``c.JupyterHub.template_vars`` as :data:`HOME_VAR`.

    JupyterHub's default list holds its own folder first, where ``page.html`` would win;
    a list that is set gets JupyterHub's folder added last. So the list is set here: the
    site's folders so far, then eohub's. With it, the Services menu shows a service's
    ``info["display_name"]`` ("Usage") instead of its name.
    """
    paths = c.JupyterHub.template_paths
    paths = paths.get_value([]) if isinstance(paths, LazyConfigValue) else list(paths)
    if TEMPLATE_DIR not in paths:
        c.JupyterHub.template_paths = [*paths, TEMPLATE_DIR]
    # Merged with the site's own variables: those set before, and those a later file adds
    # with .update() (a later file that assigns the whole dict must add HOME_VAR too).
    variables = c.JupyterHub.template_vars
    if isinstance(variables, LazyConfigValue):
        variables.update({HOME_VAR: home_page})
    else:
        c.JupyterHub.template_vars = {**variables, HOME_VAR: home_page}


__all__ = ["HOME_VAR", "TEMPLATE_DIR", "use_eohub_templates"]
