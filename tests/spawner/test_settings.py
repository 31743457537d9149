"""The launch settings: the traits, the optional YAML file, and the hub's start-up check."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from eohub.domain.launch.config import LaunchConfigError
from eohub.spawner import check_hub_config
from eohub.spawner.settings import LaunchSettings, load_launch_config

SIZES = {"small": {"display_name": "Small", "cpu": 1, "memory": "2G"}}


def hub_config(backend: str = "eohub-kube", **repo: Any) -> Config:
    config = Config()
    config.JupyterHub.spawner_class = backend
    section = "QuotaKubeSpawner" if backend == "eohub-kube" else "QuotaLocalSpawner"
    envs = {"from-repo": {"repository": True}}
    config[section].launch_environments = envs
    config[section].launch_sizes = SIZES
    for key, value in repo.items():
        config.RepoLaunches[key] = value
    return config


@pytest.mark.parametrize(
    ("backend", "settings", "where"),
    [
        ("eohub-kube", {}, "RepoLaunches.image_prefix"),
        ("eohub-kube", {"image_prefix": "Bad Prefix/"}, "RepoLaunches.image_prefix"),
        ("eohub-local", {"allowed_repos": [""]}, "RepoLaunches.allowed_repos"),
        ("eohub-local", {"trusted_repos": ["ok", "bad\n"]}, "RepoLaunches.trusted_repos"),
    ],
)
def test_bad_repository_settings_stop_the_hub_naming_the_setting(
    backend: str, settings: dict[str, Any], where: str
) -> None:
    with pytest.raises(LaunchConfigError) as caught:
        check_hub_config(hub_config(backend, **settings))
    assert str(caught.value).startswith(where + ":")


def test_good_repository_settings_pass() -> None:
    config = check_hub_config(hub_config(image_prefix="registry.example.org/binder/eohub-"))
    assert config is not None
    assert config.environments["from-repo"].repository
    assert check_hub_config(hub_config("eohub-local")) is not None


def settings_config(backend: str = "eohub-local", **traits: Any) -> Config:
    config = Config()
    config.JupyterHub.spawner_class = backend
    section = "QuotaKubeSpawner" if backend == "eohub-kube" else "QuotaLocalSpawner"
    config[section].launch_sizes = SIZES
    for key, value in traits.items():
        config[section][key] = value
    return config


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "launch.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("traits", "file_text", "where", "words"),
    [
        ({"launch_sizes": {"small": {"cpu": "x", "memory": "2G"}}}, None, "sizes.small.cpu", ""),
        (
            {"launch_environments": {"lab": {"sizes": ["nope"]}}},
            None,
            "environments.lab.sizes[0]",
            "unknown size 'nope'",
        ),
        ({}, "sizes: [unclosed", "launch_config_file", "is not valid YAML"),
        ({}, "- a list\n", "launch_config_file", "must hold a mapping"),
        ({}, "sizes: {}\nimages: {}\n", "launch_config_file", "unknown keys ['images']"),
        ({}, "", None, ""),  # an empty file holds nothing: the traits decide
    ],
)
def test_check_hub_config_names_the_bad_key(
    tmp_path: Path, traits: dict[str, Any], file_text: str | None, where: str | None, words: str
) -> None:
    if file_text is not None:
        traits["launch_config_file"] = write(tmp_path, file_text)
    config = settings_config(**traits)
    if where is None:
        assert check_hub_config(config) is not None
        return
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(config)
    assert refused.value.where == where
    assert words in str(refused.value)


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(LaunchConfigError, match=r"^launch_config_file: cannot read "):
        check_hub_config(settings_config(launch_config_file=missing))


@pytest.mark.parametrize(
    "spawner_class",
    [
        None,
        "",
        "simple",
        "jupyterhub.spawner.LocalProcessSpawner",
        "eohub.spawner.settings.load_launch_config",  # not a class
        "eohub.spawner.settings.FILE_KEYS",
        dict,
    ],
)
def test_check_hub_config_ignores_other_spawners(spawner_class: Any) -> None:
    config = Config()
    if spawner_class is not None:
        config.JupyterHub.spawner_class = spawner_class
    config.QuotaLocalSpawner.launch_sizes = {"bad": "not a size"}
    assert check_hub_config(config) is None


@pytest.mark.parametrize(
    "spawner_class", ["eohub-local", "eohub.spawner.local.QuotaLocalSpawner", "class"]
)
def test_check_hub_config_reads_the_spawner_section_and_its_bases(spawner_class: str) -> None:
    from eohub.spawner.local import QuotaLocalSpawner

    config = Config()
    config.JupyterHub.spawner_class = (
        QuotaLocalSpawner if spawner_class == "class" else spawner_class
    )
    config.LaunchSettings.launch_sizes = SIZES
    config.QuotaLocalSpawner.launch_environments = {"lab": {"display_name": "Lab"}}
    launch_config = check_hub_config(config)
    assert launch_config is not None
    assert launch_config.backend == "local"
    assert set(launch_config.sizes) == {"small"}
    assert set(launch_config.environments) == {"lab"}


def test_a_trait_replaces_the_files_key_and_the_file_fills_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sizes:\n  big: {cpu: 4, memory: 8G}\ncharge_groups: [climate]\n",
    )
    settings = LaunchSettings(launch_config_file=path, launch_sizes=SIZES)
    settings.backend = "local"
    launch_config = settings.launch_config()
    assert set(launch_config.sizes) == {"small"}
    assert launch_config.charge_groups == frozenset({"climate"})


def test_the_same_config_is_parsed_once() -> None:
    data = {"sizes": SIZES}
    first = load_launch_config("local", data)
    assert load_launch_config("local", {"sizes": dict(SIZES)}) is first
    assert load_launch_config("kube", data) is not first
    assert load_launch_config("local", data, 2.0) is not first
    permissive = load_launch_config("local", data, must_grant=False)
    assert permissive is not first
    assert (first.charged_group_must_grant, permissive.charged_group_must_grant) == (True, False)


@pytest.mark.parametrize(("setting", "expected"), [(None, True), (False, False), (True, True)])
def test_the_charged_group_must_grant_unless_the_admin_says_otherwise(
    setting: bool | None, expected: bool
) -> None:
    config = Config()
    config.JupyterHub.spawner_class = "eohub-local"
    config.QuotaLocalSpawner.launch_sizes = SIZES
    if setting is not None:
        config.QuotaLocalSpawner.charged_group_must_grant = setting
    launch_config = check_hub_config(config)
    assert launch_config is not None
    assert launch_config.charged_group_must_grant is expected


# -- KubeSpawner settings as the Zero to JupyterHub chart makes them ----------------------
# c.KubeSpawner as chart 4.4.0's jupyterhub_config.py sets it from the default values
# before storage and init containers (trait table, image, scheduler, tolerations).
_EMPTY_LISTS = """node_affinity_required node_affinity_preferred pod_affinity_required
    pod_affinity_preferred pod_anti_affinity_required pod_anti_affinity_preferred
    init_containers extra_containers profile_list"""
_EMPTY_DICTS = """extra_annotations storage_extra_labels node_selector lifecycle_hooks
    extra_resource_limits extra_resource_guarantees environment extra_pod_config"""
_IPTABLES = """iptables --append OUTPUT --protocol tcp --destination 169.254.169.254
    --destination-port 80 --jump DROP"""
CHART_KUBESPAWNER: dict[str, Any] = {
    **{key: [] for key in _EMPTY_LISTS.split()},
    **{key: {} for key in _EMPTY_DICTS.split()},
    "common_labels": {"app": "jupyterhub", "chart": "jupyterhub-4.4.0"},
    "namespace": "jhub",
    "start_timeout": 300,
    "events_enabled": True,
    "extra_labels": {"hub.jupyter.org/network-access-hub": "true"},
    "uid": 1000,
    "fs_gid": 100,
    "mem_guarantee": "1G",
    "image": "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0",
    "allow_privilege_escalation": False,
    "scheduler_name": "user-scheduler",
    "tolerations": [
        {"key": k, "operator": "Equal", "value": "user", "effect": "NoSchedule"}
        for k in ("hub.jupyter.org/dedicated", "hub.jupyter.org_dedicated")
    ],
}


def chart_config(*, block_with_iptables: bool = True, storage: str = "dynamic") -> Config:
    """The hub config chart 4.4.0 builds from its default values, as the hub admin gets it.

    From jupyterhub/files/hub/jupyterhub_config.py with jupyterhub/values.yaml of
    github.com/jupyterhub/zero-to-jupyterhub-k8s 4.4.0: the ``singleuser.*`` trait table
    (values that are not null), the image, ``allow_privilege_escalation``, the user-pod
    tolerations and node-purpose affinity (``.append`` on the config: a lazy value),
    ``singleuser.storage`` and ``singleuser.cloudMetadata.blockWithIptables`` (a
    kubernetes_asyncio ``V1Container``, appended to the list the table set). Then the
    admin's ``hub.config``: the eohub spawner and its sizes.
    """
    from kubernetes_asyncio import client

    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.Spawner.consecutive_failure_limit = 5
    for trait, value in CHART_KUBESPAWNER.items():
        c.KubeSpawner[trait] = copy.deepcopy(value)
    selector = {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
    c.KubeSpawner.node_affinity_preferred.append(
        {"weight": 100, "preference": {"matchExpressions": [selector]}}
    )
    if storage == "dynamic":
        c.KubeSpawner.storage_pvc_ensure = True
        c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
        c.KubeSpawner.storage_capacity = "10Gi"
        c.KubeSpawner.volumes = [
            {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
        ]
        c.KubeSpawner.volume_mounts = [
            {"mountPath": "/home/jovyan", "name": "volume-{user_server}", "subPath": None}
        ]
    elif storage == "static":
        c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "nfs"}}]
        c.KubeSpawner.volume_mounts = [
            {"mountPath": "/home/jovyan", "name": "home", "subPath": "{username}"}
        ]
    c.KubeSpawner.volumes.extend([])  # singleuser.storage.extraVolumes
    c.KubeSpawner.volume_mounts.extend([])
    c.Spawner.cmd = "jupyterhub-singleuser"
    if block_with_iptables:
        c.KubeSpawner.init_containers.append(
            client.V1Container(
                name="block-cloud-metadata",
                image="quay.io/jupyterhub/k8s-network-tools:4.4.0",
                command=_IPTABLES.split(),
                security_context=client.V1SecurityContext(
                    privileged=True,
                    run_as_user=0,
                    capabilities=client.V1Capabilities(add=["NET_ADMIN"]),
                ),
                resources={},
            )
        )
    c.JupyterHub.admin_access = True
    c.JupyterHub.spawner_class = "eohub-kube"  # hub.config, applied after the above
    c.QuotaKubeSpawner.launch_sizes = SIZES
    return c


WORKSPACE = {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "10Gi"}


def settings_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "eohub.spawner.settings"]


def test_the_charts_defaults_stop_the_hub_with_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    config = chart_config()
    config.QuotaKubeSpawner.launch_volumes = {"workspace": WORKSPACE}
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(config)
    assert refused.value.where == "KubeSpawner.init_containers"
    message = str(refused.value)
    for words in (
        "block-cloud-metadata",
        "singleuser.cloudMetadata.blockWithIptables: false",
        "169.254.169.254",
        "QuotaKubeSpawner.allow_unrestricted_pods",
    ):
        assert words in message
    # The chart's home claim is the workspace: the same mount path is no conflict.
    assert "mount path" not in message
    assert settings_warnings(caplog) == []


@pytest.mark.parametrize(
    "fix", ["blockWithIptables false", "allow_unrestricted_pods", "KubeSpawner section"]
)
def test_the_charts_defaults_with_the_fix_start(
    fix: str, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    config = chart_config(block_with_iptables=fix != "blockWithIptables false")
    if fix == "allow_unrestricted_pods":
        config.QuotaKubeSpawner.allow_unrestricted_pods = True
    elif fix == "KubeSpawner section":
        config.KubeSpawner.allow_unrestricted_pods = True  # a trait of the class: applies
    config.QuotaKubeSpawner.launch_volumes = {
        "workspace": WORKSPACE,
        "shared": {"kind": "pvc", "claim_name": "{group}-data", "mount_path": "/data"},
    }
    launch_config = check_hub_config(config)
    assert launch_config is not None
    assert set(launch_config.volumes) == {"workspace", "shared"}
    # Every setting the chart makes is one of the spawner's: no warning of any kind.
    assert settings_warnings(caplog) == []
    assert not [w for w in recwarn if "not recognized" in str(w.message)]


@pytest.mark.parametrize(
    ("storage", "volumes", "where", "words"),
    [
        (
            "static",
            {"home": WORKSPACE},
            "KubeSpawner.volume_mounts",
            "mount path /home/jovyan is used twice: KubeSpawner.volume_mounts[0] (home) "
            "and launch_volumes.home",
        ),
        (
            "dynamic",
            {"data": {"kind": "pvc", "claim_name": "data", "mount_path": "/home/jovyan"}},
            "KubeSpawner.init_containers",
            "; and KubeSpawner.volume_mounts: mount path /home/jovyan is used twice: "
            "KubeSpawner.volume_mounts[0] (volume-{user_server}) and launch_volumes.data",
        ),
        (
            "none",
            {"home": WORKSPACE, "h2": {**WORKSPACE, "mount_path": "/home/jovyan/work"}},
            None,
            "",
        ),
    ],
)
def test_mount_paths_used_twice_stop_the_hub_naming_both(
    storage: str, volumes: dict[str, Any], where: str | None, words: str
) -> None:
    # With the chart's default init container, its problem comes first, then the others.
    config = chart_config(storage=storage, block_with_iptables=storage == "dynamic")
    config.QuotaKubeSpawner.launch_volumes = volumes
    if where is None:
        config.QuotaKubeSpawner.allow_unrestricted_pods = True
        assert check_hub_config(config) is not None
        return
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(config)
    assert refused.value.where == where
    assert words in str(refused.value)


def test_a_workspace_claim_name_the_charts_home_replaces_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = chart_config(block_with_iptables=False)
    config.QuotaKubeSpawner.launch_volumes = {
        "workspace": {**WORKSPACE, "claim_name": "home-{username}"}
    }
    assert check_hub_config(config) is not None
    assert settings_warnings(caplog) == [
        "launch_volumes.workspace.claim_name home-{username} is not used: the chart's home"
        " claim (KubeSpawner.pvc_name_template) is the workspace at /home/jovyan"
    ]


def test_extra_mounts_and_named_entries_are_checked_too() -> None:
    config = chart_config(block_with_iptables=False)
    config.QuotaKubeSpawner.volume_mounts = {
        "b-scratch": {"mount_path": "/scratch/", "name": "scratch"},
        "a-home": {"mountPath": "/home/jovyan", "name": "volume-{user_server}"},
    }
    config.QuotaKubeSpawner.volumes = {
        "home": {
            "name": "volume-{user_server}",
            "persistentVolumeClaim": {"claimName": "{pvc_name}"},
        }
    }
    config.QuotaKubeSpawner.launch_volumes = {
        "workspace": WORKSPACE,
        "scratch": {"kind": "pvc", "claim_name": "scratch", "mount_path": "/scratch"},
    }
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(config)
    assert refused.value.where == "QuotaKubeSpawner.volume_mounts"
    assert (
        "mount path /scratch is used twice: QuotaKubeSpawner.volume_mounts['b-scratch'] "
        "(scratch) and launch_volumes.scratch"
    ) in str(refused.value)
    assert "/home/jovyan" not in str(refused.value)


@pytest.mark.parametrize(
    ("container", "words"),
    [
        (
            {"name": "setup", "image": "busybox", "security_context": {"runAsUser": 0}},
            "init container 'setup' runs as root (runAsUser 0)",
        ),
        (
            {
                "name": "perms",
                "image": "busybox",
                "securityContext": {
                    "privileged": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            },
            "init container 'perms' is privileged",
        ),
    ],
)
def test_other_unrestricted_init_containers_are_named(
    container: dict[str, Any], words: str
) -> None:
    config = chart_config(block_with_iptables=False)
    config.QuotaKubeSpawner.init_containers.append(container)  # lazy: on the default []
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(config)
    assert refused.value.where == "QuotaKubeSpawner.init_containers"
    assert words in str(refused.value)
    assert "blockWithIptables" not in str(refused.value)


@pytest.mark.parametrize(
    ("section", "key", "suggestion"),
    [
        ("KubeSpawner", "storage_capasity", "storage_capacity"),
        ("QuotaKubeSpawner", "launch_size", "launch_sizes"),
        ("Spawner", "xyzzy", None),
    ],
)
def test_a_typo_warns_once_naming_the_section_and_the_closest_setting(
    section: str, key: str, suggestion: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    config = chart_config(block_with_iptables=False)
    config[section][key] = "10Gi"
    assert check_hub_config(config) is not None
    (message,) = settings_warnings(caplog)
    assert message.startswith(f"{section}.{key} is not a setting of QuotaKubeSpawner")
    if suggestion:
        assert message.endswith(f"did you mean {suggestion}?")
    else:
        assert "did you mean" not in message


def test_the_local_spawner_knows_its_own_settings(caplog: pytest.LogCaptureFixture) -> None:
    config = settings_config(cmd=["jupyterhub-singleuser"], popen_kwargs={"cwd": "/tmp"})
    config.Spawner.default_url = "/lab"
    config.QuotaLocalSpawner.volumes = [{"name": "x"}]  # not a LocalProcessSpawner setting
    assert check_hub_config(config) is not None
    (message,) = settings_warnings(caplog)
    assert message.startswith("QuotaLocalSpawner.volumes is not a setting of QuotaLocalSpawner")
