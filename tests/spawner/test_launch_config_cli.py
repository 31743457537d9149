"""``eohub-launch-config from-profile-list``, run as an admin runs it.

The command runs as a subprocess (``python -m eohub.spawner.launch_config_cli``). Its
output must parse as a launch config, and each profile launch must have its twin: the
eohub launch QuotaKubeSpawner builds from the printed config gets the image, CPU,
memory, GPUs, node selector, tolerations and env that the profile launch gets.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from slugify import slugify

from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.profile_convert import convert_profiles, group_spellings
from eohub.domain.launch.profiles import parse_profile_list
from eohub.domain.launch.session_limits import SessionLimits
from eohub.spawner.launch_config_cli import CHART_TOLERATIONS, main
from tests.support.kube_api import fake_kubeconfig
from tests.support.kube_spawners import NO_API, make_spawner

COMMAND = [sys.executable, "-m", "eohub.spawner.launch_config_cli", "from-profile-list"]
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Pangeo",
        "description": "xarray and dask",
        "default": True,
        "kubespawner_override": {
            "image": "quay.io/eohub/pangeo:2026.11",
            "cpu_guarantee": 1,
            "cpu_limit": 2,
            "mem_guarantee": "2G",
            "mem_limit": "4G",
            "environment": {"STAC_API_URL": "https://stac.example.org/v1"},
        },
    },
    {
        "display_name": "Machine learning",
        "slug": "ml",
        "allowed_groups": ["eo-sci"],
        "eohub": {
            "max_duration": "8h",
            "idle_timeout": "45m",
            "group_limits": {"eo-sci": {"max_duration": "2d"}},
        },
        "kubespawner_override": {"node_selector": {"eohub.io/pool": "ml"}},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "torch": {
                        "display_name": "PyTorch",
                        "default": True,
                        "kubespawner_override": {"image": "quay.io/eohub/torch:2.5"},
                    },
                    "tf": {
                        "display_name": "TensorFlow",
                        "kubespawner_override": {
                            "image": "quay.io/eohub/tf:2.18",
                            "environment": {"TF_CPP_MIN_LOG_LEVEL": "2"},
                        },
                    },
                },
            },
            "resources": {
                "display_name": "Resources",
                "choices": {
                    "small": {
                        "display_name": "Small",
                        "kubespawner_override": {
                            "cpu_guarantee": 1,
                            "mem_guarantee": "4G",
                            "mem_limit": "6G",
                        },
                    },
                    "gpu": {
                        "display_name": "1 GPU",
                        "default": True,
                        "kubespawner_override": {
                            "cpu_guarantee": 4,
                            "mem_guarantee": "16G",
                            "extra_resource_limits": {"nvidia.com/gpu": "1"},
                            "node_selector": {"eohub.io/pool": "gpu"},
                            "tolerations": [GPU_TOLERATION],
                        },
                    },
                },
            },
        },
    },
]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def write(tmp_path: Path, data: Any, name: str = "values.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def parsed(text: str) -> LaunchConfig:
    data = yaml.safe_load(text)
    return parse_launch_config(
        data["environments"],
        data["sizes"],
        data.get("volumes") or {},
        backend="kube",
        charge_groups=data.get("charge_groups") or (),
    )


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_kubeconfig(tmp_path_factory.mktemp("kube"), NO_API) as path:
        yield path


# -- the command ----------------------------------------------------------------------


def test_a_values_file_converts_to_a_launch_config_with_warnings_on_top(tmp_path: Path) -> None:
    extra = {"display_name": "Bigger", "kubespawner_override": {"extra_pod_config": {"a": 1}}}
    values = {
        "singleuser": {
            "image": {"name": "quay.io/eohub/base", "tag": "1.0"},
            "profileList": [*PROFILES, extra],
        }
    }
    done = run(write(tmp_path, values), "--check")
    assert done.returncode == 0, done.stderr
    warning = "singleuser.profileList[2].kubespawner_override.extra_pod_config"
    head = done.stdout.split("\n\n", 1)[0]
    assert f"# WARNING: {warning}: has no eohub launch config equivalent" in head
    assert f"eohub-launch-config: warning: {warning}" in done.stderr
    assert "checked: 6 environments and 4 sizes parse as a launch config" in done.stderr
    config = parsed(done.stdout)
    # The profile without an image or memory gets the chart's singleuser values.
    bigger = config.environments["bigger"]
    assert bigger.image == "quay.io/eohub/base:1.0"
    assert config.sizes[bigger.sizes[0]].memory == 1024**3
    assert config.default_environment is not None
    assert config.default_environment.name == "pangeo"


@pytest.mark.parametrize(
    ("layout", "args"),
    [
        ("umbrella", ()),
        ("bare list", ()),
        ("dict by slug", ()),
        ("elsewhere", ("--key", "hub.config.KubeSpawner.profile_list")),
    ],
)
def test_the_list_is_found_where_admins_keep_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str, args: tuple[str, ...]
) -> None:
    data: Any = {
        "umbrella": {"jupyterhub": {"singleuser": {"profileList": PROFILES}}},
        "bare list": PROFILES,
        "dict by slug": {"a-pangeo": PROFILES[0], "b-ml": PROFILES[1]},
        "elsewhere": {"hub": {"config": {"KubeSpawner": {"profile_list": PROFILES}}}},
    }[layout]
    assert main(["from-profile-list", str(write(tmp_path, data)), *args]) == 0
    out = capsys.readouterr().out
    assert set(parsed(out).environments) == {
        "pangeo",
        "ml-torch-small",
        "ml-torch-gpu",
        "ml-tf-small",
        "ml-tf-gpu",
    }


@pytest.mark.parametrize(
    ("data", "args", "message"),
    [
        (None, (), "holds no profiles"),
        ({"singleuser": {"image": {}}}, (), "singleuser.profileList is missing or empty"),
        ({"hub": {}}, ("--key", "hub.config.profile_list"), "has no key hub.config"),
        (
            {"singleuser": {"profileList": [{"display_name": "X", "kubespawner_overide": {}}]}},
            (),
            "singleuser.profileList[0]: unknown key 'kubespawner_overide'",
        ),
        (
            {
                "singleuser": {
                    "profileList": [{"display_name": "X", "kubespawner_override": {"imag": "x"}}]
                }
            },
            (),
            "singleuser.profileList[0].kubespawner_override.imag: is not a KubeSpawner setting",
        ),
        (
            [{"display_name": "X", "profile_options": {"size": {}}}],
            (),
            "profile_list[0].profile_options.size",
        ),
        (
            [{"display_name": "X", "eohub": {"group_limits": {"eo": {"max_duration": "2w"}}}}],
            (),
            "profile_list[0].eohub.group_limits.eo.max_duration: must be a duration like 3600",
        ),
        (
            [{"display_name": "X", "eohub": {"idle_timeout": -60}}],
            (),
            "profile_list[0].eohub.idle_timeout: must be between 0 (no limit)",
        ),
    ],
)
def test_a_bad_file_is_exit_2_with_one_line_naming_the_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data: Any,
    args: tuple[str, ...],
    message: str,
) -> None:
    assert main(["from-profile-list", str(write(tmp_path, data)), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("eohub-launch-config: error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1


def test_an_unreadable_file_is_exit_2_from_the_command(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("singleuser: [unclosed\n")
    for path in (tmp_path / "missing.yaml", tmp_path / "bad.yaml"):
        done = run(path)
        assert done.returncode == 2
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("eohub-launch-config: error: ")
        assert str(path) in lines[0]


def test_nothing_convertible_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path, [{"display_name": "No image", "kubespawner_override": {"cpu_limit": 1}}]
    )
    assert main(["from-profile-list", str(path)]) == 1
    assert "has no image" in capsys.readouterr().err


def test_the_chart_base_keeps_its_tolerations_and_warns_when_a_profile_replaces_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = {"singleuser": {"profileList": PROFILES}}
    assert main(["from-profile-list", str(write(tmp_path, values))]) == 0
    err = capsys.readouterr().err
    assert "resources.choices.gpu.kubespawner_override.tolerations: replaces the admin's" in err
    assert CHART_TOLERATIONS[0]["key"] == "hub.jupyter.org/dedicated"


# -- a profile launch and its eohub twin ----------------------------------------------


def routes() -> list[Any]:
    conversion = convert_profiles(
        parse_profile_list(PROFILES, slugify), spellings=group_spellings(PROFILES)
    )
    assert conversion.warnings == ()
    return list(conversion.routes)


def launched(spawner: Any) -> dict[str, Any]:
    """What reaches the pod, and what the launch charges."""
    launch = spawner.launch
    env = {
        k: v
        for k, v in spawner.environment.items()
        if k not in ("EOHUB_ENVIRONMENT", "EOHUB_SIZE")
    }
    return {
        "image": launch.environment.image,
        "image trait": spawner.image,
        "cpu": launch.size.cpu,
        "cpu_limit": launch.size.cpu_limit,
        "memory": launch.size.memory,
        "memory_limit": launch.size.memory_limit,
        "gpus": launch.size.gpus,
        "node_selector": dict(spawner.node_selector),
        "tolerations": [dict(t) for t in spawner.tolerations],
        "env": env,
        "limits": launch.limits,
        "deadline": spawner.extra_pod_config.get("activeDeadlineSeconds"),
    }


@pytest.fixture(scope="module")
def launch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The launch config the command prints for :data:`PROFILES` (a bare list)."""
    folder = tmp_path_factory.mktemp("converted")
    done = run(write(folder, PROFILES), "--check")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr  # every profile converts
    path = folder / "launch.yaml"
    path.write_text(done.stdout)
    return path


@pytest.mark.parametrize("route", routes(), ids=lambda r: f"{r.environment}+{r.size}")
async def test_each_profile_launch_has_an_eohub_twin(launch_file: Path, route: Any) -> None:
    config = parsed(await asyncio.to_thread(launch_file.read_text))
    assert route.environment in config.environments
    assert route.size in config.sizes

    by_profile = await make_spawner(
        "alice", launch_environments={}, launch_sizes={}, launch_volumes={}, profile_list=PROFILES
    )
    await by_profile.authorize_launch({"profile": route.profile, **route.choices})
    by_eohub = await make_spawner(
        "alice",
        launch_environments={},
        launch_sizes={},
        launch_volumes={},
        launch_config_file=str(launch_file),
    )
    await by_eohub.authorize_launch({"environment": route.environment, "size": route.size})
    twin = launched(by_eohub)
    assert twin == launched(by_profile)
    assert twin["image"] == twin["image trait"]
    if route.profile == "ml":  # its limits, for alice's group eo-sci
        assert twin["limits"] == SessionLimits(idle_timeout=45 * 60, max_duration=2 * 86400)
        assert twin["deadline"] == 2 * 86400 + 600


def test_image_and_gpu_resource_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    amd = {
        "display_name": "AMD",
        "kubespawner_override": {
            "cpu_guarantee": 2,
            "mem_guarantee": "8G",
            "extra_resource_limits": {"amd.com/gpu": 1},
        },
    }
    path = write(tmp_path, [amd])
    args = ["--image", "quay.io/eohub/rocm:6", "--gpu-resource-name", "amd.com/gpu"]
    assert main(["from-profile-list", str(path), *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    config = parsed(captured.out)
    assert config.environments["amd"].image == "quay.io/eohub/rocm:6"
    assert config.sizes["amd"].gpus == 1
