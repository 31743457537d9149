"""eohub: group-driven login, launch form, quotas and accounting for JupyterHub.

The package is layered (see ``docs/explanation/architecture.md``):

- :mod:`eohub.domain`: pure logic, importing nothing but the standard library;
- :mod:`eohub.adapters`: thin I/O adapters that return domain objects;
- :mod:`eohub.auth`, :mod:`eohub.spawner`, :mod:`eohub.accounting`: the JupyterHub
  plugin classes and the accounting service, built on the two layers below.
"""

from ._version import __version__

__all__ = ["__version__"]
