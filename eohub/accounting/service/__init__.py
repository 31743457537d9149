"""The accounting hub-service's request side: handlers, the REST API, pages, metrics and workers.

Handlers and workers receive a frozen :class:`ServiceContext` built once by
:mod:`eohub.accounting.app`; nothing in this package imports the application.
"""
