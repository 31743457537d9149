"""``eohub-launch-config``: check a launch config, or make one from a profile list.

To check a ``launch_config_file`` (environments, sizes, volumes, charge groups and
session limits) as the hub will at start-up, without starting one::

    eohub-launch-config check launch.yaml [--backend local]

prints the first error with its key path
(``environments.gpu.group_limits.climate.max_duration: must be ...``) and exits 1, or
says what it holds and exits 0.

For admins who move from KubeSpawner's ``profile_list`` to eohub's own launch config::

    eohub-launch-config from-profile-list values.yaml > launch.yaml

reads ``singleuser.profileList`` of a Zero to JupyterHub values file (or
``jupyterhub.singleuser.profileList`` of an umbrella chart such as daskhub, a bare list
or dict of profiles, or the list at ``--key a.b.c``), validates it as QuotaKubeSpawner
does, converts it (:mod:`eohub.domain.launch.profile_convert`) and prints a
``launch_config_file``. What the launch config cannot express is printed as warnings,
at the top of the output as YAML comments and on stderr. ``--check`` parses the printed
config as the hub will. Exit codes: 0 done, 1 nothing converted or the check failed,
2 an unreadable file or an invalid profile list (with a one-line error naming the key).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from slugify import slugify

from eohub.domain.launch.config import Backend, LaunchConfig, parse_launch_config
from eohub.domain.launch.fields import LaunchConfigError
from eohub.domain.launch.profile_convert import Conversion, convert_profiles, group_spellings
from eohub.domain.launch.profiles import parse_profile_list

PROG = "eohub-launch-config"
#: Where the list is in a values file: the chart's own, then umbrella charts'.
CHART_KEYS = ("singleuser.profileList", "jupyterhub.singleuser.profileList")
#: What the Zero to JupyterHub chart gives every user pod unless the values say otherwise.
CHART_MEMORY_GUARANTEE = "1G"
CHART_TOLERATIONS = (
    {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user"},
    {"key": "hub.jupyter.org_dedicated", "operator": "Equal", "value": "user"},
)


class CommandError(Exception):
    """A problem the admin must fix; the message is one line."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def read_values(path: str) -> Any:
    """The YAML document in ``path``; CommandError when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"cannot read {path}: {_one_line(e)}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CommandError(f"{path} is not valid YAML: {_one_line(e)}") from None


def _lookup(data: Any, key: str, path: str) -> Any:
    value = data
    walked: list[str] = []
    for part in key.split("."):
        walked.append(part)
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise CommandError(f"{path} has no key {'.'.join(walked)}")
    return value


def find_profile_list(data: Any, key: str | None, path: str) -> tuple[Any, str, Any]:
    """The profile list, its key path, and the ``singleuser`` section it sits in (or None)."""
    if key is not None:
        found = _lookup(data, key, path)
        parent = _lookup(data, key.rpartition(".")[0], path) if "." in key else None
        chart = key.endswith("singleuser.profileList") and isinstance(parent, Mapping)
        return found, key, parent if chart else None
    if isinstance(data, Mapping):
        for chart_key in CHART_KEYS:
            section = chart_key.removesuffix(".profileList")
            try:
                singleuser = _lookup(data, section, path)
            except CommandError:
                continue
            if not isinstance(singleuser, Mapping) or not singleuser.get("profileList"):
                raise CommandError(
                    f"{path}: {chart_key} is missing or empty; nothing to convert "
                    "(point --key at the list if it is elsewhere)"
                )
            return singleuser["profileList"], chart_key, singleuser
    if data is None or data == [] or data == {}:
        raise CommandError(f"{path} holds no profiles; nothing to convert")
    # A bare list of profiles, or KubeSpawner's dict of them keyed by slug.
    return data, "profile_list", None


def chart_base(singleuser: Mapping[str, Any] | None, image: str | None) -> dict[str, Any]:
    """The KubeSpawner values the chart sets from ``singleuser``, which profiles override."""
    base: dict[str, Any] = {}
    section = singleuser or {}

    def part(name: str) -> Mapping[str, Any]:
        value = section.get(name)
        return value if isinstance(value, Mapping) else {}

    if part("image").get("name"):
        tag = part("image").get("tag")
        base["image"] = f"{part('image')['name']}:{tag}" if tag else str(part("image")["name"])
    for name, given, trait in (
        ("cpu", "guarantee", "cpu_guarantee"),
        ("cpu", "limit", "cpu_limit"),
        ("memory", "guarantee", "mem_guarantee"),
        ("memory", "limit", "mem_limit"),
    ):
        if part(name).get(given) is not None:
            base[trait] = part(name)[given]
    if singleuser is not None:
        if "guarantee" not in part("memory"):
            base["mem_guarantee"] = CHART_MEMORY_GUARANTEE
        extra = section.get("extraTolerations")
        base["tolerations"] = [*CHART_TOLERATIONS, *(extra if isinstance(extra, list) else [])]
    for given, trait in (
        ("limits", "extra_resource_limits"),
        ("guarantees", "extra_resource_guarantees"),
    ):
        if isinstance(part("extraResource").get(given), Mapping):
            base[trait] = dict(part("extraResource")[given])
    if isinstance(section.get("defaultUrl"), str):
        base["default_url"] = section["defaultUrl"]
    if image:
        base["image"] = image
    return base


def convert(args: argparse.Namespace) -> tuple[Conversion, str]:
    """Read, validate and convert the profile list ``args`` name."""
    data = read_values(args.values)
    profile_list, where, singleuser = find_profile_list(data, args.key, args.values)
    # Imported here: the rest of the command needs no JupyterHub or Kubernetes client.
    from eohub.spawner.kube import QuotaKubeSpawner

    try:
        profiles = parse_profile_list(
            profile_list,
            slugify,
            known_traits=frozenset(QuotaKubeSpawner.class_trait_names()),
            where=where,
        )
    except LaunchConfigError as e:
        raise CommandError(f"{args.values}: {_one_line(e)}") from None
    if not profiles:
        raise CommandError(f"{args.values}: {where} holds no profiles; nothing to convert")
    conversion = convert_profiles(
        profiles,
        base=chart_base(singleuser, args.image),
        gpu_resource_name=args.gpu_resource_name,
        spellings=group_spellings(profile_list),
    )
    return conversion, where


def render(conversion: Conversion, source: str) -> str:
    """The launch config file: a header, the warnings as comments, then the YAML."""
    lines = [
        f"# eohub launch config converted from {source} by {PROG} from-profile-list.",
        "# Use it as QuotaKubeSpawner.launch_config_file; see the how-to",
        '# "Use your KubeSpawner profile list".',
    ]
    if conversion.warnings:
        count = len(conversion.warnings)
        lines += ["#", f"# {count} warning(s): what the profile list says that this does not."]
        lines += [f"# WARNING: {w}" for w in conversion.warnings]
    body = yaml.safe_dump(
        conversion.launch_config(), sort_keys=False, allow_unicode=True, width=100
    )
    return "\n".join(lines) + "\n\n" + body


def check(text: str) -> LaunchConfig:
    """Parse printed output as the hub parses ``launch_config_file``."""
    return parse_file_data(yaml.safe_load(text), "kube")


def parse_file_data(data: Any, backend: Backend) -> LaunchConfig:
    """A ``launch_config_file``'s data as the hub parses it; LaunchConfigError naming the
    key when it is invalid."""
    from eohub.spawner.settings import FILE_KEYS

    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise LaunchConfigError("launch_config_file", "must hold a mapping of settings")
    if unknown := sorted(set(map(str, data)) - set(FILE_KEYS)):
        raise LaunchConfigError(
            unknown[0], f"is not a launch config key; use {', '.join(FILE_KEYS)}"
        )
    return parse_launch_config(
        data.get("environments") or {},
        data.get("sizes") or {},
        data.get("volumes") or {},
        backend=backend,
        charge_groups=data.get("charge_groups") or (),
        session_limits=data.get("session_limits"),
    )


def check_file(args: argparse.Namespace) -> int:
    """``check``: the launch config file as the hub's start-up reads it."""
    data = read_values(args.file)
    try:
        config = parse_file_data(data, args.backend)
    except LaunchConfigError as e:
        print(f"{PROG}: error: {args.file}: {_one_line(e)}", file=sys.stderr)
        return 1
    print(
        f"{PROG}: checked: {len(config.environments)} environments, {len(config.sizes)} "
        f"sizes and {len(config.volumes)} volumes parse as a {args.backend} launch config",
        file=sys.stderr,
    )
    return 0


def from_profile_list(args: argparse.Namespace) -> int:
    conversion, where = convert(args)
    text = render(conversion, f"{where} of {Path(args.values).name}")
    for warning in conversion.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if not conversion.environments:
        print(f"{PROG}: error: no profile could be converted (see the warnings)", file=sys.stderr)
        return 1
    if args.check:
        try:
            config = check(text)
        except LaunchConfigError as e:
            print(f"{PROG}: error: the converted config is invalid: {e}", file=sys.stderr)
            return 1
        print(
            f"{PROG}: checked: {len(config.environments)} environments and "
            f"{len(config.sizes)} sizes parse as a launch config",
            file=sys.stderr,
        )
    sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG, description="Tools for eohub's launch config (launch_config_file)."
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub = commands.add_parser(
        "from-profile-list",
        help="print the launch config equivalent to a KubeSpawner profile list",
        description="Print the eohub launch config equivalent to a KubeSpawner profile "
        "list, with a warning for each thing it cannot express.",
    )
    sub.add_argument(
        "values",
        help="a Zero to JupyterHub values file (singleuser.profileList or "
        "jupyterhub.singleuser.profileList), or a YAML list or dict of profiles",
    )
    sub.add_argument("--key", help="the dotted key of the profile list in the file (a.b.c)")
    sub.add_argument(
        "--image", help="the image of profiles that set none (default: singleuser.image)"
    )
    sub.add_argument(
        "--gpu-resource-name",
        default="nvidia.com/gpu",
        help="QuotaKubeSpawner.gpu_resource_name: the resource GPUs are requested as",
    )
    sub.add_argument(
        "--check", action="store_true", help="parse the printed config as the hub will"
    )
    sub.set_defaults(run=from_profile_list)
    checker = commands.add_parser(
        "check",
        help="check a launch config file as the hub does at start-up",
        description="Check a launch_config_file (environments, sizes, volumes, "
        "charge_groups, session_limits) as the hub does at start-up; the first error "
        "is printed with its key path.",
    )
    checker.add_argument("file", help="the YAML launch config file")
    checker.add_argument(
        "--backend",
        choices=("kube", "local"),
        default="kube",
        help="the spawner it is for: kube (QuotaKubeSpawner, default) or local",
    )
    checker.set_defaults(run=check_file)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

__all__ = [
    "CommandError",
    "chart_base",
    "check",
    "find_profile_list",
    "main",
    "parse_file_data",
    "render",
]
