"""Follow the settings of the JupyterHub reading this config, as they are set.

Config code (a drop-in, ``json_logging(c)``, ``allow_embedding(c, ...)``) runs before
the hub has merged its files and filled in its defaults; some checks and merges only
make sense on the final values. :func:`observe_running_hub` calls a handler each time
one of the named traits of the hub reading this config changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def observe_running_hub(
    marker: str, handler: Callable[[Any], None], names: Iterable[str]
) -> Any | None:
    """Observe ``names`` on the running hub with ``handler``, once per ``marker``.

    Returns the hub the first time, else None: also when no hub is reading this config
    (a test, ``eohub-launch-config check``).
    """
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return None
    hub = JupyterHub.instance()
    if getattr(hub, marker, False):
        return None
    setattr(hub, marker, True)
    hub.observe(handler, names=list(names))
    return hub
