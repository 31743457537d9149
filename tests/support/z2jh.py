"""Chart 4.4.0 of Zero to JupyterHub, for tests: Helm values in, the hub's traitlets
``Config`` out, as the chart's hub pod builds it.

Reproduces, from the repository ``jupyterhub/zero-to-jupyterhub-k8s``:

- ``jupyterhub/files/hub/jupyterhub_config.py`` in its order: the ``singleuser.*`` trait
  table onto ``c.KubeSpawner`` (uid, fs_gid, profile_list, ...), the image, tolerations
  and node-purpose affinity; ``singleuser.storage`` (``dynamic``: ``pvc_name_template``
  when set, ``storage_pvc_ensure``, class and capacity, a volume ``volumeNameTemplate``
  whose claim is ``{pvc_name}``, mounted at ``homeMountPath``; ``static``; then
  ``extraVolumes``/``extraVolumeMounts``); ``hub.services`` (each
  ``api_token`` from the chart's Secret, never from the values); ``hub.loadRoles``;
  ``singleuser.cmd``/``defaultUrl``; ``singleuser.cloudMetadata.blockWithIptables``
  (the privileged ``block-cloud-metadata`` init container, a ``V1Container``); the
  Secret's cookie secret and crypt keys; the ``hub.config`` pass-through; then each
  ``jupyterhub_config.d/*.py`` (``hub.extraFiles`` mounted there) and
  ``hub.extraConfig``, run with ``exec`` in the config file's own globals.
- ``jupyterhub/files/hub/z2jh.py``: ``get_config(key, default=None)``,
  ``get_secret_value``, ``set_config_if_not_none``. The config file imports this
  ``get_config``, so in a drop-in it shadows traitlets' ``get_config()``.
- ``jupyterhub/values.yaml`` for :data:`CHART_DEFAULTS` (the keys read here).

The stored 4.x file was read (kubernetes_asyncio, ``allowPrivilegeEscalation``,
``cull.adminUsers``, ``claimName: "{pvc_name}"``, iptables on TCP port 80). Since
4.3.0 the chart also takes dicts for ``extraVolumes``/``extraVolumeMounts``; both shapes
are accepted, and either being a dict gives KubeSpawner dicts (it sorts them by key);
the keys of the built-in entries are this module's choice. The ``hub.config`` key
check of 4.3.0 is approximated (a class-like name). Not reproduced (no eohub decision
reads them): networking, the hub database, labels, pull secrets, the user scheduler,
``singleuser.extraFiles``, the idle culler's service and role, ``debug``.
"""

from __future__ import annotations

import copy
import glob  # noqa: F401 - a name of the chart's config file
import os
import re
import secrets
import sys  # noqa: F401 - a name of the chart's config file
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from jupyterhub.utils import url_path_join  # noqa: F401 - as glob
from kubernetes_asyncio import client
from traitlets.config import Config, PyFileConfigLoader

CHART_VERSION = "4.4.0"
#: The hub image of the chart release; deploy/z2jh/Dockerfile builds FROM it.
HUB_IMAGE = f"quay.io/jupyterhub/k8s-hub:{CHART_VERSION}"
CONFIG_D = "/usr/local/etc/jupyterhub/jupyterhub_config.d"
#: The chart's own config file; ``__file__`` in the namespace drop-ins run in.
CHART_CONFIG_FILE = "/usr/local/etc/jupyterhub/jupyterhub_config.py"
#: The chart's Secret (``fullnameOverride: ""``, the default, gives unprefixed names).
HUB_SECRET = "hub"

#: ``jupyterhub/values.yaml`` of chart 4.4.0, the keys the mapping below reads.
CHART_DEFAULTS: dict[str, Any] = yaml.safe_load(
    f"""
hub:
  image: {{name: quay.io/jupyterhub/k8s-hub, tag: "{CHART_VERSION}"}}
  config: {{JupyterHub: {{admin_access: true, authenticator_class: dummy}}}}
  services: {{}}
  loadRoles: {{}}
  extraFiles: {{}}
  extraConfig: {{}}
  extraEnv: {{}}
  allowNamedServers: false
  namedServerLimitPerUser: null
  networkPolicy: {{enabled: true, ingress: [], egress: []}}
singleuser:
  image:
    name: quay.io/jupyterhub/k8s-singleuser-sample
    tag: "{CHART_VERSION}"
    pullPolicy: null
  uid: 1000
  fsGid: 100
  allowPrivilegeEscalation: false
  startTimeout: 300
  events: true
  extraLabels: {{hub.jupyter.org/network-access-hub: "true"}}
  extraTolerations: []
  initContainers: []
  profileList: []
  cmd: jupyterhub-singleuser
  defaultUrl: null
  memory: {{limit: null, guarantee: 1G}}
  cpu: {{limit: null, guarantee: null}}
  storage:
    type: dynamic
    extraVolumes: null
    extraVolumeMounts: null
    static: {{pvcName: null, subPath: "{{username}}"}}
    capacity: 10Gi
    homeMountPath: /home/jovyan
    dynamic:
      storageClass: null
      subPath: null
      pvcNameTemplate: null
      volumeNameTemplate: volume-{{user_server}}
      storageAccessModes: [ReadWriteOnce]
  cloudMetadata: {{blockWithIptables: true, ip: 169.254.169.254}}
  networkTools:
    image: {{name: quay.io/jupyterhub/k8s-network-tools, tag: "{CHART_VERSION}"}}
    resources: {{}}
  networkPolicy:
    enabled: true
    egressAllowRules:
      cloudMetadataServer: false
      dnsPortsCloudMetadataServer: true
      dnsPortsKubeSystemNamespace: true
      dnsPortsPrivateIPs: true
      nonPrivateIPs: true
      privateIPs: false
scheduling:
  userPods:
    tolerations:
      - {{key: hub.jupyter.org/dedicated, operator: Equal, value: user, effect: NoSchedule}}
      - {{key: hub.jupyter.org_dedicated, operator: Equal, value: user, effect: NoSchedule}}
    nodeAffinity: {{matchNodePurpose: prefer}}
cull: {{enabled: true}}  # the culler's service and role are not reproduced
"""
)

# The chart's table: singleuser.<key> onto c.KubeSpawner.<trait>; a bare trait is read
# from its camelCase key.
_TRAIT_TABLE = """pod_name_template start_timeout image_pull_policy=image.pullPolicy
events_enabled=events extra_labels extra_annotations uid fs_gid
service_account=serviceAccountName storage_extra_labels=storage.extraLabels node_selector
node_affinity_required=extraNodeAffinity.required
node_affinity_preferred=extraNodeAffinity.preferred
pod_affinity_required=extraPodAffinity.required pod_affinity_preferred=extraPodAffinity.preferred
pod_anti_affinity_required=extraPodAntiAffinity.required
pod_anti_affinity_preferred=extraPodAntiAffinity.preferred lifecycle_hooks init_containers
extra_containers mem_limit=memory.limit mem_guarantee=memory.guarantee cpu_limit=cpu.limit
cpu_guarantee=cpu.guarantee extra_resource_limits=extraResource.limits
extra_resource_guarantees=extraResource.guarantees environment=extraEnv profile_list
extra_pod_config"""
KUBESPAWNER_TRAITS: tuple[tuple[str, str | None], ...] = tuple(
    (trait, key or None) for trait, _, key in (i.partition("=") for i in _TRAIT_TABLE.split())
)
_UNSET = object()
# The chart's block-cloud-metadata rule (4.x: TCP port 80 only).
IPTABLES = (
    "iptables --append OUTPUT --protocol tcp --destination {ip} --destination-port 80 --jump DROP"
)


def camel_caseify(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def merge_values(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge key by key, anything else replaces, and a user
    ``null`` removes the chart's default."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_values(path: Path) -> dict[str, Any]:
    """A values file, refused unless it is a YAML mapping."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a Helm values file must be a mapping, not {type(data)}")
    return data


def chart_secret(values: Mapping[str, Any]) -> dict[str, str]:
    """The chart's Secret as the hub pod reads it: each ``hub.services`` token (the
    value's ``apiToken``, else generated once as the chart does), the cookie secret and
    the crypt key."""
    data = {
        "hub.config.JupyterHub.cookie_secret": secrets.token_hex(32),
        "hub.config.CryptKeeper.keys": secrets.token_hex(32),
    }
    for key, service in ((values.get("hub") or {}).get("services") or {}).items():
        token = (service or {}).get("apiToken") or secrets.token_hex(32)
        data[f"hub.services.{key}.apiToken"] = token
    return data


class _Z2JH:
    """z2jh.py's helpers over one set of merged values and one Secret."""

    def __init__(self, values: dict[str, Any], secret: Mapping[str, str]) -> None:
        self.values = values
        self.secret = secret

    def get_config(self, key: str, default: Any = None) -> Any:
        value: Any = self.values
        for level in key.split("."):
            if not isinstance(value, dict) or level not in value:
                return default
            value = value[level]
        return value

    def set_config_if_not_none(self, cparent: Any, name: str, key: str) -> None:
        data = self.get_config(key)
        if data is not None:
            setattr(cparent, name, data)

    def get_secret_value(self, key: str, default: Any = _UNSET) -> Any:
        if key in self.secret:
            return self.secret[key]
        if default is _UNSET:
            raise KeyError(f"{key} is not in the chart's Secret {HUB_SECRET!r}")
        return default

    def get_name(self, name: str) -> str:
        return name  # fullnameOverride "" (the default): resources keep their short names


def _apply_singleuser(c: Config, z: _Z2JH) -> None:
    for trait, key in KUBESPAWNER_TRAITS:
        z.set_config_if_not_none(
            c.KubeSpawner, trait, "singleuser." + (key or camel_caseify(trait))
        )
    image = z.get_config("singleuser.image.name")
    if image:
        tag = z.get_config("singleuser.image.tag")
        c.KubeSpawner.image = f"{image}:{tag}" if tag else image
    c.KubeSpawner.allow_privilege_escalation = z.get_config("singleuser.allowPrivilegeEscalation")
    purpose = z.get_config("scheduling.userPods.nodeAffinity.matchNodePurpose")
    selector = {
        "matchExpressions": [
            {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
        ]
    }
    if purpose == "prefer":
        c.KubeSpawner.node_affinity_preferred.append({"weight": 100, "preference": selector})
    elif purpose == "require":
        c.KubeSpawner.node_affinity_required.append(selector)
    elif purpose not in (None, "ignore"):
        raise ValueError(f"Unrecognized value for matchNodePurpose: {purpose}")
    tolerations = z.get_config("scheduling.userPods.tolerations", []) + z.get_config(
        "singleuser.extraTolerations", []
    )
    if tolerations:
        c.KubeSpawner.tolerations = tolerations


def _apply_storage(c: Config, z: _Z2JH) -> None:
    storage_type = z.get_config("singleuser.storage.type")
    home = z.get_config("singleuser.storage.homeMountPath")
    if storage_type == "dynamic":
        template = z.get_config("singleuser.storage.dynamic.pvcNameTemplate")
        if template:
            c.KubeSpawner.pvc_name_template = template
        volume_name = z.get_config("singleuser.storage.dynamic.volumeNameTemplate")
        c.KubeSpawner.storage_pvc_ensure = True
        z.set_config_if_not_none(
            c.KubeSpawner, "storage_class", "singleuser.storage.dynamic.storageClass"
        )
        z.set_config_if_not_none(
            c.KubeSpawner, "storage_access_modes", "singleuser.storage.dynamic.storageAccessModes"
        )
        z.set_config_if_not_none(c.KubeSpawner, "storage_capacity", "singleuser.storage.capacity")
        c.KubeSpawner.volumes = [
            {"name": volume_name, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
        ]
        c.KubeSpawner.volume_mounts = [
            {
                "mountPath": home,
                "name": volume_name,
                "subPath": z.get_config("singleuser.storage.dynamic.subPath"),
            }
        ]
    elif storage_type == "static":
        claim = z.get_config("singleuser.storage.static.pvcName")
        c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": claim}}]
        c.KubeSpawner.volume_mounts = [
            {
                "mountPath": home,
                "name": "home",
                "subPath": z.get_config("singleuser.storage.static.subPath"),
            }
        ]
    volumes = list(c.KubeSpawner.get("volumes", []))
    mounts = list(c.KubeSpawner.get("volume_mounts", []))
    extra_volumes = z.get_config("singleuser.storage.extraVolumes") or []
    extra_mounts = z.get_config("singleuser.storage.extraVolumeMounts") or []
    if isinstance(extra_volumes, dict) or isinstance(extra_mounts, dict):
        # 4.3.0+: dict entries keep their keys; built-in ones are keyed by name, list
        # entries by index, so KubeSpawner's sort by key keeps them apart.
        c.KubeSpawner.volumes = {v["name"]: v for v in volumes} | _keyed(extra_volumes)
        c.KubeSpawner.volume_mounts = {
            f"{m['name']}-{m['mountPath']}": m for m in mounts
        } | _keyed(extra_mounts)
    else:
        c.KubeSpawner.volumes = volumes + list(extra_volumes)
        c.KubeSpawner.volume_mounts = mounts + list(extra_mounts)


def _keyed(entries: list[Any] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(entries, dict):
        return dict(entries)
    return {f"{i}-{e['name']}": e for i, e in enumerate(entries)}


def _apply_services_and_roles(c: Config, z: _Z2JH) -> None:
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    for key, service in z.get_config("hub.services", {}).items():
        service.setdefault("name", key)
        service.pop("apiToken", None)
        service["api_token"] = z.get_secret_value(f"hub.services.{key}.apiToken")
        c.JupyterHub.services.append(service)
    for key, role in z.get_config("hub.loadRoles", {}).items():
        role.setdefault("name", key)
        c.JupyterHub.load_roles.append(role)


def _apply_commands_and_metadata(c: Config, z: _Z2JH) -> None:
    cmd = z.get_config("singleuser.cmd", _UNSET)
    if cmd is not _UNSET:
        c.Spawner.cmd = cmd  # an explicit null is kept, as the chart keeps it
    z.set_config_if_not_none(c.Spawner, "default_url", "singleuser.defaultUrl")
    metadata = z.get_config("singleuser.cloudMetadata", {})
    if metadata.get("blockWithIptables") == True:  # noqa: E712 - the chart's own test
        tools = "singleuser.networkTools"
        container = client.V1Container(
            name="block-cloud-metadata",
            image=f"{z.get_config(tools + '.image.name')}:{z.get_config(tools + '.image.tag')}",
            command=IPTABLES.format(ip=metadata.get("ip", "169.254.169.254")).split(),
            security_context=client.V1SecurityContext(
                privileged=True,
                run_as_user=0,
                capabilities=client.V1Capabilities(add=["NET_ADMIN"]),
            ),
            resources=z.get_config(tools + ".resources"),
        )
        c.KubeSpawner.init_containers.append(container)


def _apply_hub_config(c: Config, z: _Z2JH) -> None:
    c.JupyterHub.cookie_secret = z.get_secret_value("hub.config.JupyterHub.cookie_secret")
    c.CryptKeeper.keys = z.get_secret_value("hub.config.CryptKeeper.keys").split(";")
    for app, cfg in z.get_config("hub.config", {}).items():
        if not (isinstance(app, str) and app[:1].isupper() and app.isidentifier()):
            raise ValueError(f"hub.config.{app}: not a configurable class name")
        if app == "JupyterHub":
            for secret in ("proxy_auth_token", "cookie_secret", "services"):
                cfg.pop(secret, None)
        elif app == "ConfigurableHTTPProxy":
            cfg.pop("auth_token", None)
        elif app == "CryptKeeper":
            cfg.pop("keys", None)
        c[app].update(cfg)


def _chart_namespace(c: Config, z: _Z2JH) -> dict[str, Any]:
    """The globals of the chart's config file when it runs drop-ins and extraConfig:
    traitlets' ``c`` and ``load_subconfig``, and the names the file imports, among
    them z2jh's ``get_config`` (which shadows traitlets')."""

    def load_subconfig(fname: str, path: str | None = None) -> None:
        loader = PyFileConfigLoader(fname, path or os.path.dirname(CHART_CONFIG_FILE))
        c.merge(loader.load_config())

    imports = ("glob", "os", "re", "sys", "client", "url_path_join")
    return {name: globals()[name] for name in imports} | {
        "__name__": "__main__",
        "__file__": CHART_CONFIG_FILE,
        "c": c,
        "load_subconfig": load_subconfig,
        "camelCaseify": camel_caseify,
        "get_config": z.get_config,
        "get_name": z.get_name,
        "get_secret_value": z.get_secret_value,
        "set_config_if_not_none": z.set_config_if_not_none,
    }


def dropin_sources(values: Mapping[str, Any], files: Mapping[str, str]) -> list[tuple[str, str]]:
    """The ``hub.extraFiles`` mounted as ``jupyterhub_config.d/*.py``, in the order the
    chart loads them (sorted path), with their text: ``stringData`` from the values, or
    ``files[mountPath]`` for one given with ``helm --set-file ...stringData=``."""
    found = []
    for key, spec in (values.get("hub", {}).get("extraFiles") or {}).items():
        mount = PurePosixPath(spec.get("mountPath", ""))
        if str(mount.parent) != CONFIG_D or mount.suffix != ".py":
            continue
        text = spec.get("stringData", files.get(str(mount)))
        if text is None:
            raise ValueError(
                f"hub.extraFiles.{key}: no stringData for {mount}, and no file given for it"
            )
        found.append((str(mount), text))
    return sorted(found)


def hub_config_from_values(
    values: Mapping[str, Any],
    chart_defaults: Mapping[str, Any],
    *,
    secret: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> Config:
    """The hub's config as chart 4.4.0's ``jupyterhub_config.py`` builds it from
    ``values`` over ``chart_defaults`` (see the module docstring for what is covered).

    ``secret`` is the chart's Secret (default: :func:`chart_secret` of ``values``);
    ``files`` maps a mount path to the text of a ``hub.extraFiles`` entry given with
    ``--set-file``. Drop-ins and ``hub.extraConfig`` run as the chart runs them; an
    error in one propagates, as it would stop the hub pod. A real hub takes the result
    in its config file with ``c.merge(...)``, which keeps appended (lazy) values.
    """
    z = _Z2JH(merge_values(chart_defaults, values), secret or chart_secret(values))
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    z.set_config_if_not_none(c.JupyterHub, "allow_named_servers", "hub.allowNamedServers")
    z.set_config_if_not_none(
        c.JupyterHub, "named_server_limit_per_user", "hub.namedServerLimitPerUser"
    )
    _apply_singleuser(c, z)
    _apply_storage(c, z)
    _apply_services_and_roles(c, z)
    _apply_commands_and_metadata(c, z)
    _apply_hub_config(c, z)
    namespace = _chart_namespace(c, z)
    for path, text in dropin_sources(z.values, files or {}):
        exec(compile(text, os.path.basename(path), "exec"), namespace)  # noqa: S102 - as the chart
    for _key, source in sorted(z.get_config("hub.extraConfig", {}).items()):
        exec(source, namespace)  # noqa: S102 - as the chart
    return c


def hub_environment(values: Mapping[str, Any], secret: Mapping[str, str]) -> dict[str, str]:
    """``hub.extraEnv`` as the hub container sees it: plain values, and ``valueFrom``
    references to the chart's Secret resolved from ``secret`` (others are refused)."""
    env: dict[str, str] = {}
    for name, spec in ((values.get("hub") or {}).get("extraEnv") or {}).items():
        if not isinstance(spec, dict):
            env[name] = str(spec)
            continue
        ref = spec.get("valueFrom", {}).get("secretKeyRef", {})
        if ref.get("name") != HUB_SECRET or ref.get("key") not in secret:
            raise ValueError(f"hub.extraEnv.{name}: not a key of the chart's Secret: {ref}")
        env[name] = secret[ref["key"]]
    return env
