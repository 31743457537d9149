"""The mapping from jupyterhub-ldapauthenticator 2.x settings to eohub's, without I/O.

:func:`translate` turns the 2.x settings that are set into :class:`Step` values (the
eohub settings each becomes, or none when it is ignored, and why); :func:`merge` joins
them and refuses an old setting that contradicts an eohub one. What eohub cannot honour
raises :class:`LegacyConfigError` naming the setting. :mod:`eohub.auth.ldap_legacy`
applies the result at hub start-up; docs/how-to/migrate-authenticators.md is the table.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eohub.domain.identity.access import dn_key

LEGACY_GROUP_FIELDS = re.compile(r"\{(userdn|uid)\}")
DEFAULT_LOOKUP_FILTER = "({login_attr}={login})"
STRATEGIES = ("before_bind", "on_connect", "insecure")
# Settings whose values never reach a log line.
SECRETS = frozenset({"service_password"})
# The eohub traits a 2.x setting may become; both set and different stops the hub.
TARGETS = (
    "server_urls",
    "start_tls",
    "tls_ca_file",
    "service_dn",
    "service_password",
    "anonymous_search",
    "bind_dn_templates",
    "user_search_filter",
    "login_name_pattern",
    "nested_groups",
)
# ldap3 Tls() arguments that only tune the handshake: eohub's defaults are safe.
_TLS_TUNING = frozenset({"version", "ciphers", "sni"})


class LegacyConfigError(ValueError):
    """A 2.x setting eohub cannot honour, or one that contradicts an eohub setting."""


def translate_group_filter(template: str) -> str:
    """A 2.x ``group_search_filter`` with eohub's placeholders."""
    return template.replace("{userdn}", "{dn}").replace("{uid}", "{username}")


@dataclass(frozen=True)
class Step:
    """What one old setting becomes: eohub settings (none: it is ignored) and why."""

    old: str
    settings: dict[str, Any] = field(default_factory=dict)
    advice: str = ""

    def describe(self) -> str:
        """The new settings as an admin writes them, secrets hidden."""
        return ", ".join(
            f"{k} = {'(hidden)' if k in SECRETS else repr(v)}" for k, v in self.settings.items()
        )


def _refuse(setting: str, why: str) -> LegacyConfigError:
    return LegacyConfigError(f"LDAPAuthenticator.{setting}: {why}")


def translate(old: Mapping[str, Any], *, allow_plaintext: bool = False) -> list[Step]:
    """The steps that turn the 2.x settings ``old`` (only those set) into eohub's."""
    return [
        *_server_steps(old, allow_plaintext),
        *_tls_steps(old),
        *(_lookup_steps(old) if old.get("lookup_dn") else _template_steps(old)),
        *_other_steps(old),
    ]


def merge(steps: Iterable[Step], configured: Mapping[str, Any]) -> dict[str, Any]:
    """The eohub settings of ``steps``; refused where they contradict ``configured``."""
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for step in steps:
        for name, value in step.settings.items():
            shown = "(hidden)" if name in SECRETS else repr(value)
            if name in configured and configured[name] != value:
                mine = "(hidden)" if name in SECRETS else repr(configured[name])
                raise _refuse(
                    step.old,
                    f"becomes {name} = {shown}, but {name} is set to {mine}; "
                    "remove one of the two settings",
                )
            if name in merged and merged[name] != value:
                raise _refuse(
                    step.old,
                    f"becomes {name} = {shown}, but {origin[name]} made it "
                    f"{merged[name]!r}; the two settings disagree",
                )
            merged[name], origin[name] = value, step.old
    return merged


def _strategy(old: Mapping[str, Any]) -> str:
    given = old.get("tls_strategy")
    if given is not None and given not in STRATEGIES:
        raise _refuse("tls_strategy", f"{given!r} is not one of {list(STRATEGIES)}")
    if old.get("use_ssl") and given not in (None, "on_connect"):
        raise _refuse(
            "use_ssl", f"True means tls_strategy 'on_connect', but tls_strategy is {given!r}"
        )
    return str(given or ("on_connect" if old.get("use_ssl") else "before_bind"))


def _server_url(old: Mapping[str, Any], strategy: str) -> str:
    address = str(old["server_address"]).strip().rstrip("/")
    scheme = "ldaps" if strategy == "on_connect" else "ldap"
    if "://" in address:
        given, _, address = address.partition("://")
        if given.lower() not in ("ldap", "ldaps"):
            raise _refuse("server_address", f"{given!r} is not ldap:// or ldaps://")
        if given.lower() == "ldaps" and strategy != "on_connect":
            if "tls_strategy" in old:
                raise _refuse("server_address", "is ldaps:// but tls_strategy is not on_connect")
            scheme = "ldaps"
    if address.count(":") == 1:
        raise _refuse("server_address", "give the port in server_port, not in the address")
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    port = old.get("server_port") or (636 if scheme == "ldaps" else 389)
    return f"{scheme}://{host}:{port}"


def _server_steps(old: Mapping[str, Any], allow_plaintext: bool) -> list[Step]:
    names = [n for n in ("server_address", "server_port", "tls_strategy", "use_ssl") if n in old]
    if not names:
        return []
    if "server_address" not in old:
        raise _refuse(
            names[0],
            "is set without server_address; name the servers in server_urls instead, "
            "e.g. ['ldaps://ldap.example.org']",
        )
    strategy = _strategy(old)
    url = _server_url(old, strategy)
    urls = {"server_urls": [url]}
    steps = [Step("server_address", urls, "the host is part of the URL")]
    if "server_port" in old:
        steps.append(Step("server_port", urls, "the port is part of the URL"))
    if "tls_strategy" in old:
        if strategy == "insecure" and not allow_plaintext:
            raise _refuse(
                "tls_strategy",
                "'insecure' sends passwords in clear text; eohub does that only with "
                "start_tls = False and allow_plaintext = True set as well",
            )
        tls = {"on_connect": {}, "before_bind": {"start_tls": True}}.get(
            strategy, {"start_tls": False}
        )
        advice = {
            "on_connect": "an ldaps:// URL uses TLS from the first byte",
            "before_bind": "ldap:// URLs upgrade with StartTLS (start_tls, the default)",
            "insecure": "no TLS at all, allowed by allow_plaintext",
        }[strategy]
        steps.append(Step("tls_strategy", {**urls, **tls}, advice))
    if "use_ssl" in old:
        if old["use_ssl"]:
            steps.append(Step("use_ssl", urls, "an ldaps:// URL uses TLS from the first byte"))
        else:
            steps.append(Step("use_ssl", {}, "False had no effect since 2.0; remove it"))
    return steps


def _tls_steps(old: Mapping[str, Any]) -> list[Step]:
    if "tls_kwargs" not in old:
        return []
    kwargs = dict(old["tls_kwargs"])
    settings = {}
    if "ca_certs_file" in kwargs:
        settings["tls_ca_file"] = str(kwargs.pop("ca_certs_file"))
    validate = kwargs.pop("validate", ssl.CERT_REQUIRED)
    if validate != ssl.CERT_REQUIRED:
        raise _refuse(
            "tls_kwargs",
            f"validate = {validate!r} turns certificate checks off; eohub always verifies "
            "the server's certificate and host name: give its CA in tls_ca_file",
        )
    ignored = sorted(set(kwargs) & _TLS_TUNING)
    unknown = sorted(set(kwargs) - _TLS_TUNING)
    if unknown:
        raise _refuse(
            "tls_kwargs",
            f"{unknown} have no eohub equivalent: eohub reads the CA from one PEM file "
            "(tls_ca_file), verifies the host name in the URL, and sends no client "
            "certificate",
        )
    advice = "certificates are always verified"
    if ignored:
        advice += f"; {ignored} ignored (Python's TLS defaults apply)"
    return [Step("tls_kwargs", settings, advice)]


def _lookup_filter(old: Mapping[str, Any]) -> str:
    template = old.get("lookup_dn_search_filter") or DEFAULT_LOOKUP_FILTER
    attribute = old.get("user_attribute")
    if not attribute and "{login_attr}" in template:
        raise _refuse("lookup_dn", "needs user_attribute, e.g. 'uid' or 'sAMAccountName'")
    try:
        found = template.format(login_attr=attribute or "", login="{username}")
    except (KeyError, IndexError, ValueError) as e:
        raise _refuse("lookup_dn_search_filter", f"{template!r} is not a template: {e}") from e
    extra = old.get("search_filter")
    if not extra:
        return found
    name_from = old.get("lookup_dn_user_dn_attribute")
    if "{username}" in extra and name_from and name_from.lower() != str(attribute).lower():
        raise _refuse(
            "search_filter",
            f"its {{username}} is the {name_from} value in 2.x; eohub fills in the login "
            "name: write the filter for user_attribute",
        )
    try:
        narrowed = extra.format(userattr=attribute or "", username="{username}")
    except (KeyError, IndexError, ValueError) as e:
        raise _refuse("search_filter", f"{extra!r} is not a template: {e}") from e
    if not narrowed.startswith("("):
        narrowed = f"({narrowed})"
    return f"(&{found}{narrowed})"


def _lookup_steps(old: Mapping[str, Any]) -> list[Step]:
    user, password = old.get("lookup_dn_search_user"), old.get("lookup_dn_search_password")
    if password and not user:
        raise _refuse("lookup_dn_search_password", "is set without lookup_dn_search_user")
    steps = []
    if user:
        account = {"service_dn": user}
        steps.append(Step("lookup_dn", account, "with service_dn eohub searches, then binds"))
        steps.append(Step("lookup_dn_search_user", account, "the search account"))
        if password is not None:
            steps.append(
                Step("lookup_dn_search_password", {"service_password": password}, "never logged")
            )
    else:
        steps.append(Step("lookup_dn", {"anonymous_search": True}, "no search account"))
    user_filter = {"user_search_filter": _lookup_filter(old)}
    for name in ("user_attribute", "lookup_dn_search_filter", "search_filter"):
        if name in old:
            steps.append(Step(name, user_filter, "one filter finds the user"))
    if "bind_dn_template" in old:
        steps.append(Step("bind_dn_template", {}, "eohub binds as the DN the search found"))
    name_from = old.get("lookup_dn_user_dn_attribute")
    same = not name_from or name_from.lower() == str(old.get("user_attribute")).lower()
    if old.get("use_lookup_dn_username") and not same:
        raise _refuse(
            "use_lookup_dn_username",
            f"hub users named by {name_from} cannot be kept: eohub names them by the "
            "login name, and refreshes look them up by it",
        )
    for name in ("lookup_dn_user_dn_attribute", "use_lookup_dn_username"):
        if name in old:
            steps.append(Step(name, {}, "the hub user name is the login name, as in 2.x"))
    return steps


def _template_steps(old: Mapping[str, Any]) -> list[Step]:
    steps = []
    if "lookup_dn" in old:
        steps.append(Step("lookup_dn", {}, "False: eohub binds with bind_dn_templates"))
    if "bind_dn_template" in old:
        raw = old["bind_dn_template"]
        templates = [t for t in ([raw] if isinstance(raw, str) else raw) if t]
        for template in templates:
            if dn_key(template.replace("{username}", "x")) is None:
                raise _refuse(
                    "bind_dn_template",
                    f"{template!r} is not a DN; eohub reads the user's entry at the DN it "
                    "binds as: use lookup_dn with a search account instead",
                )
        steps.append(Step("bind_dn_template", {"bind_dn_templates": templates}, "a list"))
    if "search_filter" in old:
        raise _refuse(
            "search_filter",
            "eohub applies it in the user search, which needs lookup_dn (or service_dn)",
        )
    for name in (
        "user_attribute",
        "lookup_dn_search_filter",
        "lookup_dn_search_user",
        "lookup_dn_search_password",
        "lookup_dn_user_dn_attribute",
        "use_lookup_dn_username",
    ):
        if name in old:
            steps.append(Step(name, {}, "only used with lookup_dn = True, as in 2.x"))
    return steps


def _login_pattern(regex: str) -> str:
    # 2.x tests with re.match (anchored at the start only); eohub matches the whole name.
    return regex if regex.endswith("$") and not regex.endswith("\\$") else f"(?:{regex}).*"


def _other_steps(old: Mapping[str, Any]) -> list[Step]:
    steps = []
    if "valid_username_regex" in old:
        pattern = _login_pattern(str(old["valid_username_regex"]))
        steps.append(
            Step("valid_username_regex", {"login_name_pattern": pattern}, "whole-name match")
        )
    if "allow_nested_groups" in old:
        nested = {"nested_groups": bool(old["allow_nested_groups"])}
        steps.append(Step("allow_nested_groups", nested, "renamed"))
    ignored = {
        "escape_userdn": "eohub escapes every value put in a DN or filter, as 2.x does",
        "attributes": "the search_filter entry was only counted",
        "group_attributes": "eohub reads the group's name (group_name_attribute)",
    }
    steps += [Step(name, {}, why) for name, why in ignored.items() if name in old]
    return steps


def _rdns(dn: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<!\\),", dn)]


def _same_rdn(rdns: Iterable[str]) -> bool:
    return len({re.sub(r"\s*=\s*", "=", rdn.lower()) for rdn in rdns}) == 1


def common_base(dns: Iterable[str]) -> str | None:
    """The deepest entry that holds all of ``dns`` (their parents), or None."""
    parents = [_rdns(dn)[1:] for dn in dns]
    if not parents:
        return None
    shared: list[str] = []
    for rdns in zip(*(reversed(p) for p in parents), strict=False):
        if not _same_rdn(rdns):
            break
        shared.insert(0, rdns[0])
    return ",".join(shared) or None


def directory_root(dn: str) -> str | None:
    """The ``dc=`` suffix of ``dn`` (``dc=example,dc=org``), or None."""
    rdns = _rdns(dn)
    while rdns and not rdns[0].lower().startswith("dc="):
        rdns.pop(0)
    return ",".join(rdns) or None
