"""The pure domain layer: group resolution, policy, options, ledger and repository specs.

Everything below this package imports only the Python standard library and other
``eohub.domain`` modules, so it can be reasoned about and tested with plain tables of
cases. ``tests/test_layers.py`` enforces this: a domain module that imports an I/O
library (jupyterhub, tornado, sqlalchemy, ldap3, kubernetes, ...) fails the test suite.
"""
