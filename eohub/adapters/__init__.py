"""Thin I/O adapters: LDAP, OIDC, the hub REST API, SQL, image registries and builders.

An adapter talks to one outside system, translates its errors once at this boundary,
and returns :mod:`eohub.domain` objects. Adapters may import the domain layer, never
the plugin packages (:mod:`eohub.auth`, :mod:`eohub.spawner`, :mod:`eohub.accounting`).
"""
