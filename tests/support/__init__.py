"""Test support: real services started on free loopback ports and stopped by PID.

Each module starts one kind of service and returns a small frozen description of it;
``tests/conftest.py`` turns them into fixtures. A service that cannot start raises
:class:`~tests.support.process.ServiceStartError` carrying the tail of its log, so a
broken environment fails loudly instead of skipping.
"""
