"""The pure domain layer: every decision eohub makes, as plain functions and data.

One room per concept: :mod:`~eohub.domain.identity` (groups, entitlements, who may log
in), :mod:`~eohub.domain.launch` (what a user may launch), :mod:`~eohub.domain.repos`
(repository specs, images and policy), :mod:`~eohub.domain.accounting` (events, the
ledger, quotas, reconcile, enforcement) and :mod:`~eohub.domain.reports` (XDMoD, CSV,
charts), with :mod:`~eohub.domain.fields` as the one shape of a field-by-field error.

Everything below this package imports only the Python standard library and other
``eohub.domain`` modules, so it can be reasoned about and tested with plain tables of
cases. ``tests/test_layers.py`` enforces this, and that the rooms depend one way:
identity at the bottom, repos below launch, accounting and reports below both.
"""
