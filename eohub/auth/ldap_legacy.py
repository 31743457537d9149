"""jupyterhub-ldapauthenticator 2.x settings, accepted and mapped onto eohub's.

A hub that moves from ldapauthenticator keeps its ``c.LDAPAuthenticator`` config: each
2.x name is a trait of :class:`LegacyLDAPSettings`, and at start-up
:meth:`LegacyLDAPSettings.apply_legacy_settings` turns the ones that are set into
eohub's traits, logging one WARNING per old setting that names the eohub trait and the
value it became. What eohub cannot honour (no TLS without ``allow_plaintext``,
certificate checks off, client certificates, ...) stops the hub with the reason, and
an old and a new setting that disagree stop it too. The mapping itself, without any
I/O, is :mod:`eohub.auth.ldap_legacy_map`; docs/how-to/migrate-authenticators.md is its
table.

``user_search_base``, ``group_search_filter``, ``allowed_groups`` and
``auth_state_attributes`` keep their 2.x names in eohub; ``group_search_filter``'s
``{userdn}`` and ``{uid}`` are read as ``{dn}`` and ``{username}``.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Dict, Int, List, Unicode, Union
from traitlets.config import LoggingConfigurable

from eohub.auth.ldap_legacy_map import (
    LEGACY_GROUP_FIELDS,
    TARGETS,
    LegacyConfigError,
    common_base,
    directory_root,
    merge,
    translate,
    translate_group_filter,
)
from eohub.domain.identity.access import dn_key
from eohub.logs import get_logger

__all__ = [
    "LEGACY_GROUP_FIELDS",
    "LegacyConfigError",
    "LegacyLDAPSettings",
    "translate_group_filter",
]

log = get_logger(__name__)


class LegacyLDAPSettings(LoggingConfigurable):
    """jupyterhub-ldapauthenticator 2.x settings, each mapped at start-up (see module)."""

    server_address = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: the server's host. Use ``server_urls``.",
    ).tag(config=True)
    server_port = Int(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: the server's port. Use the port in ``server_urls``.",
    ).tag(config=True)
    tls_strategy = Unicode(
        None,
        allow_none=True,
        help="""
        ldapauthenticator 2.x: ``before_bind`` (StartTLS), ``on_connect`` (LDAPS) or
        ``insecure``. Use ``ldap://`` or ``ldaps://`` in ``server_urls`` and ``start_tls``;
        ``insecure`` also needs ``allow_plaintext``.
        """,
    ).tag(config=True)
    use_ssl = Bool(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x (deprecated there): True is an ``ldaps://`` URL.",
    ).tag(config=True)
    tls_kwargs = Dict(
        None,
        allow_none=True,
        help="""
        ldapauthenticator 2.x: ldap3 TLS arguments. ``ca_certs_file`` becomes
        ``tls_ca_file``; turning verification off or client certificates are refused.
        """,
    ).tag(config=True)
    bind_dn_template = Union(
        [List(Unicode()), Unicode()],
        default_value=None,
        allow_none=True,
        help="ldapauthenticator 2.x: one template or a list. Use ``bind_dn_templates``.",
    ).tag(config=True)
    lookup_dn = Bool(
        None,
        allow_none=True,
        help="""
        ldapauthenticator 2.x: search for the user's DN, then bind. eohub does so when
        ``service_dn`` (or ``anonymous_search``) is set.
        """,
    ).tag(config=True)
    lookup_dn_search_filter = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: ``({login_attr}={login})``. Use ``user_search_filter``.",
    ).tag(config=True)
    lookup_dn_search_user = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: the search account's DN. Use ``service_dn``.",
    ).tag(config=True)
    lookup_dn_search_password = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: the search account's password. Use ``service_password``.",
    ).tag(config=True)
    lookup_dn_user_dn_attribute = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: with ``use_lookup_dn_username`` only; see the how-to.",
    ).tag(config=True)
    user_attribute = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: the login attribute. Use it in ``user_search_filter``.",
    ).tag(config=True)
    valid_username_regex = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: use ``login_name_pattern`` (matched against the whole name).",
    ).tag(config=True)
    use_lookup_dn_username = Bool(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: eohub names hub users by the login name; see the how-to.",
    ).tag(config=True)
    search_filter = Unicode(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: users must match it. Joined into ``user_search_filter``.",
    ).tag(config=True)
    attributes: List[Any] = List(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: read with ``search_filter``, never used. Ignored.",
    ).tag(config=True)
    group_attributes: List[Any] = List(
        None,
        allow_none=True,
        help="ldapauthenticator 2.x: never used for the decision. Ignored.",
    ).tag(config=True)
    escape_userdn = Bool(
        None,
        allow_none=True,
        help="ldapauthenticator (no effect since 2.0): eohub always escapes. Ignored.",
    ).tag(config=True)
    allow_nested_groups = Bool(
        None,
        allow_none=True,
        help="Older name of ``nested_groups``.",
    ).tag(config=True)

    _legacy_applied = False
    # Set by LDAPSettings' validator when group_search_filter uses 2.x placeholders.
    legacy_group_search_filter: str | None = None

    def legacy_settings(self) -> dict[str, Any]:
        """The 2.x settings that are set (not None)."""
        names = sorted(LegacyLDAPSettings.class_own_traits())
        # Containers never hold None: "set" is what the config says.
        return {
            n: getattr(self, n)
            for n in names
            if self.configured(n) and getattr(self, n) is not None
        }

    def configured(self, name: str) -> bool:
        """Whether the config sets ``name`` on this class or one it inherits from."""
        return any(
            self.config._has_section(section) and name in self.config[section]
            for section in self.section_names()
        )

    def apply_legacy_settings(self) -> None:
        """Map the 2.x settings onto eohub's traits, once; LegacyConfigError if impossible."""
        if self._legacy_applied:
            return
        self._legacy_applied = True
        old = self.legacy_settings()
        steps = translate(old, allow_plaintext=bool(getattr(self, "allow_plaintext", False)))
        configured = {n: getattr(self, n) for n in TARGETS if self.configured(n)}
        for name, value in merge(steps, configured).items():
            setattr(self, name, value)
        for step in steps:
            if step.settings:
                log.warning(
                    "LDAPAuthenticator.{setting} is a jupyterhub-ldapauthenticator 2.x "
                    "setting; it became {became} ({why}): set that instead",
                    setting=step.old,
                    became=step.describe(),
                    why=step.advice,
                )
            else:
                log.warning(
                    "LDAPAuthenticator.{setting} is a jupyterhub-ldapauthenticator 2.x "
                    "setting that eohub ignores ({why}): remove it",
                    setting=step.old,
                    why=step.advice,
                )
        self._legacy_group_settings(bool(old) or bool(self.legacy_group_search_filter))

    def _legacy_group_settings(self, migrating: bool) -> None:
        if self.legacy_group_search_filter:
            log.warning(
                "LDAPAuthenticator.group_search_filter uses ldapauthenticator 2.x "
                "placeholders; it became group_search_filter = {became} ({{dn}} and "
                "{{username}}): set that instead",
                became=getattr(self, "group_search_filter", ""),
            )
        if not migrating or self.configured("group_search_base"):
            return
        entries = [
            e
            for name in ("allowed_groups", "admin_groups", "blocked_groups")
            for e in getattr(self, name, ())
            if dn_key(e)
        ]
        people = [getattr(self, "user_search_base", ""), *getattr(self, "bind_dn_templates", ())]
        roots = [r for r in map(directory_root, filter(None, people)) if r]
        base = common_base(entries) or (roots[0] if roots else None)
        if base:
            setattr(self, "group_search_base", base)  # noqa: B010 (a trait of the subclass)
            log.warning(
                "LDAPAuthenticator.group_search_base is not set; groups are searched under "
                "{base}, the entry that holds the configured group DNs (or the users): set "
                "group_search_base to where your groups live",
                base=base,
            )
