"""QuotaKubeSpawner: KubeSpawner with eohub's launch policy, quota and ledger.

Every part of the pod that policy governs comes from the approved launch, never from
the request: the image, CPU, memory and GPU requests and limits, node selector and
tolerations from the environment and size; volumes and mounts from the admin's volume
definitions (plus the workspace claim). Labels and annotations carry the group charged
and the session id for cluster tools; a claim per group names its group (storage sampler).

Each launch starts again from the admin's own values of these traits: the hub keeps one
spawner object per server across restarts, and a launch must not inherit the GPU, the
volumes or the access token of the previous one.

KubeSpawner's ``profile_list`` works as it does there, policed by the same launch policy
(:mod:`eohub.spawner.profile_list`): a profile's overrides are applied first, and what
they make is what is charged, quota-checked and checked against the security standard.

Pods meet the Kubernetes "restricted" Pod Security Standard by default (non-root,
no privilege escalation, all capabilities dropped, seccomp RuntimeDefault), and the
manifest is checked against it before anything is created: a config that would loosen
it stops the spawn with the reason, unless ``allow_unrestricted_pods`` says otherwise.
NFS and ``host_path`` volumes are outside "restricted" by definition; use them only with
that setting, in a namespace whose policy admits them.

Session limits are enforced by eohub's accounting service, which stops the server
through the hub as on any backend. The pod's ``activeDeadlineSeconds`` is only a
backstop, ``deadline_backstop`` seconds beyond the launch's ``max_duration``; a pod the
cluster ends at that deadline is recorded with the reason ``max_duration``.
"""

from __future__ import annotations

import copy
from typing import Any

from kubespawner import KubeSpawner
from kubespawner.slugs import is_valid_label, safe_slug
from tornado import web
from traitlets import Bool, Integer, Unicode, default

from eohub.domain.accounting.events import event_key
from eohub.domain.accounting.stop_reasons import MAX_DURATION
from eohub.domain.launch.kube_storage import HomeStorage, home_storage, normal_path
from eohub.domain.launch.pod_defaults import RESTRICTED_CONTAINER, RESTRICTED_POD, SECURE_TRAITS
from eohub.domain.launch.pod_security import restricted_violations
from eohub.domain.launch.policy import Launch
from eohub.domain.launch.progress import Step
from eohub.domain.launch.repository import repo_urlpath
from eohub.domain.launch.volumes import Volume, expand, fill_claim_name
from eohub.logs import get_logger
from eohub.spawner.errors import user_error
from eohub.spawner.mixin import QuotaSpawnerMixin
from eohub.spawner.profile_list import ProfileListSupport
from eohub.spawner.repo_launches import RepoLaunchError

log = get_logger(__name__)

LABEL_PREFIX = "eohub.io/"
#: A pod's ``status.reason`` once the cluster ended it at its ``activeDeadlineSeconds``.
DEADLINE_EXCEEDED = "DeadlineExceeded"
# allowPrivilegeEscalation and runAsUser come from KubeSpawner's own traits
# (allow_privilege_escalation, uid), so that an admin who changes those is checked,
# not silently overridden by the restricted context's defaults.
#: The traits a launch sets; each launch starts from the admin's values of them.
LAUNCH_TRAITS = (
    "image",
    "cpu_guarantee",
    "cpu_limit",
    "mem_guarantee",
    "mem_limit",
    "extra_resource_guarantees",
    "extra_resource_limits",
    "node_selector",
    "tolerations",
    "environment",
    "default_url",
    "volumes",
    "volume_mounts",
    "extra_labels",
    "extra_annotations",
    "storage_extra_annotations",
    "extra_pod_config",
    "storage_pvc_ensure",
    "storage_capacity",
    "storage_class",
    "start_timeout",
)


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value: itself when valid, else a slug with a hash."""
    return str(safe_slug(text, is_valid=is_valid_label))


def object_name(text: str, max_length: int = 63) -> str:
    """``text`` as a DNS-1123 label (volume and claim names), collision-free."""
    return str(safe_slug(text, max_length=max_length))


def literal(value: Any) -> Any:
    """``value`` with its braces doubled.

    KubeSpawner runs ``str.format`` with ``{username}`` and friends over the env,
    volumes, labels and annotations. What eohub puts there is data (a display name, a
    group, a token) and must come out as written, not expanded or failing with a
    KeyError on a stray brace.
    """
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def _values(value: Any) -> list[Any]:
    # KubeSpawner takes these as lists or as dicts of named entries.
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return list(value or [])


def _exit_code(pod_status: dict[str, Any]) -> int | None:
    """The exit status of the notebook container (KubeSpawner's name), once it ended."""
    for container in pod_status.get("containerStatuses") or ():
        if container.get("name") == "notebook":
            ended = (container.get("state") or {}).get("terminated") or {}
            code = ended.get("exitCode")
            return code if isinstance(code, int) else None
    return None


# The profile list comes first: its launches replace the mixin's "no profiles" defaults.
class QuotaKubeSpawner(ProfileListSupport, QuotaSpawnerMixin, KubeSpawner):  # type: ignore[misc]
    """KubeSpawner with eohub's launch form, policy, quota and accounting."""

    backend = "kube"

    gpu_resource_name = Unicode(
        "nvidia.com/gpu",
        help="The extended resource a size's ``gpus`` request, e.g. ``amd.com/gpu``.",
    ).tag(config=True)
    allow_unrestricted_pods = Bool(
        False,
        help="""Send pods that do not meet the "restricted" Pod Security Standard (for
        example with NFS or host_path volumes, or a loosened security context). False
        refuses such a spawn with the reasons, before anything is created.""",
    ).tag(config=True)
    deadline_backstop = Integer(
        600,
        min=0,
        help="""Seconds beyond a launch's ``max_duration`` at which Kubernetes itself ends
        the pod (its ``activeDeadlineSeconds``). eohub's accounting service stops the
        server at ``max_duration``, after a warning; this deadline is only a backstop
        for when that stop does not happen (the service or the hub is down), so keep
        it longer than an outage you would tolerate. Servers without a
        ``max_duration`` get no deadline. A pod ended by it is recorded with the
        reason ``max_duration``.""",
    ).tag(config=True)

    _admin_traits: dict[str, Any] | None = None
    pvc_name: str  # KubeSpawner's plain attribute, set in its __init__

    @default("uid")
    def _default_uid(self) -> int:
        return int(SECURE_TRAITS["uid"])  # jovyan; the restricted standard needs non-root

    @default("fs_gid")
    def _default_fs_gid(self) -> int:
        return int(SECURE_TRAITS["fs_gid"])  # the users group, so the workspace is writable

    @default("container_security_context")
    def _default_container_security_context(self) -> dict[str, Any]:
        return copy.deepcopy(dict(RESTRICTED_CONTAINER))

    @default("pod_security_context")
    def _default_pod_security_context(self) -> dict[str, Any]:
        return copy.deepcopy(dict(RESTRICTED_POD))

    @default("automount_service_account_token")
    def _default_automount(self) -> bool:
        return False  # a notebook has no business with the Kubernetes API

    def session_id(self) -> str:
        return event_key("start", self.user.name, self.name, self._started_at())

    # -- the approved launch onto KubeSpawner's traits ----------------------------------

    def _admin(self) -> dict[str, Any]:
        """The admin's values of the launch traits, as they were before any launch."""
        if self._admin_traits is None:
            self._admin_traits = {n: copy.deepcopy(getattr(self, n)) for n in LAUNCH_TRAITS}
        return copy.deepcopy(self._admin_traits)

    async def authorize_profile_launch(self, context: Any, raw: Any, charged: Any) -> Launch:
        # Only what a launch may set: a deepcopy of every trait would copy bound methods.
        names = {*LAUNCH_TRAITS, *(n for p in context.profiles for n in p.override_names)}
        before = {n: copy.deepcopy(getattr(self, n)) for n in names}
        try:
            return await super().authorize_profile_launch(context, raw, charged)
        except BaseException:
            # A refused launch leaves the spawner as it was: no override of it stays.
            for name, value in before.items():
                if getattr(self, name) != value:
                    setattr(self, name, value)
            raise

    def profile_launch(self, selection: Any, parts: Any) -> Launch:
        # The launch traits go back to the admin's values before the profile's apply.
        for name, value in self._admin().items():
            setattr(self, name, value)
        return super().profile_launch(selection, parts)

    def apply_launch(self, launch: Launch) -> None:
        if launch.profile is None:
            self.restore_profile_traits()
            for name, value in self._admin().items():
                setattr(self, name, value)
            self._apply_environment(launch)
        # else: the traits hold the admin's values and the profile's overrides already.
        self._apply_eohub(launch)

    def _apply_environment(self, launch: Launch) -> None:
        env, size = launch.environment, launch.size
        image = env.image if launch.repo is None else launch.repo.image
        if image is None:
            # The config requires an image except for repository environments, whose
            # image is named by RepoLaunches.image_prefix.
            raise user_error(
                500,
                "Repository launches are not set up on this hub (no image prefix); tell an admin.",
                "Repository launches not set up",
            )
        self.image = image
        self.cpu_guarantee = size.cpu
        self.cpu_limit = size.cpu_limit
        self.mem_guarantee = size.memory
        self.mem_limit = size.memory_limit
        gpu = {self.gpu_resource_name: str(size.gpus)} if size.gpus else {}
        admin: dict[str, Any] = {n: getattr(self, n) for n in LAUNCH_TRAITS}
        self.extra_resource_guarantees = {**admin["extra_resource_guarantees"], **gpu}
        self.extra_resource_limits = {**admin["extra_resource_limits"], **gpu}
        self.node_selector = {**admin["node_selector"], **env.node_selector}
        self.tolerations = [*_values(admin["tolerations"]), *map(dict, env.tolerations)]

    def _apply_eohub(self, launch: Launch) -> None:
        """What eohub adds to any launch: env, start page, volumes, labels, backstop."""
        env = launch.environment
        base = {n: copy.deepcopy(getattr(self, n)) for n in LAUNCH_TRAITS}
        self.environment = {**base["environment"], **literal(self.launch_env(launch))}
        if launch.urlpath:
            self.default_url = launch.urlpath
        if launch.repo is not None:
            if not launch.urlpath_chosen:
                # repo2docker images start in the repository: the file is at its root.
                self.default_url = repo_urlpath(launch.urlpath, "", launch.repo.filepath)
            if self.repo_launches.builder is not None:
                self.start_timeout = base["start_timeout"] + int(self.repo_launches.build_timeout)
        home = home_storage(base["volumes"], base["volume_mounts"], self.pvc_name_template)
        own = [v for v in launch.volumes if home is None or v.kind != "workspace"]
        specs = [self._volume(volume, launch.group) for volume in own]
        homes = [
            self._home_as_workspace(v, home, launch.group)
            for v in launch.volumes
            if home is not None and v.kind == "workspace"
        ]
        self.volumes = [*_values(base["volumes"]), *literal([s for s, _ in specs])]
        self.volume_mounts = [
            *_values(base["volume_mounts"]),
            *[m for m in homes if m is not None],  # KubeSpawner fills in the volume name
            *literal([m for _, m in specs]),
        ]
        labels = {
            f"{LABEL_PREFIX}group": label_value(launch.group),
            f"{LABEL_PREFIX}environment": label_value(env.name),
            f"{LABEL_PREFIX}size": label_value(launch.size.name),
        }
        self.extra_labels = {**base["extra_labels"], **labels}
        annotations = {
            f"{LABEL_PREFIX}group": launch.group,
            f"{LABEL_PREFIX}session-id": self.session_id(),
        }
        self.extra_annotations = {**base["extra_annotations"], **literal(annotations)}
        per_group = any(v.kind == "workspace" and "{group}" in v.claim_name for v in own)
        claim = {f"{LABEL_PREFIX}group": launch.group} if per_group else {}
        self.storage_extra_annotations = {**base["storage_extra_annotations"], **literal(claim)}
        if launch.limits.max_duration:
            # Counted from the pod's start, which comes after the session's: the
            # enforced stop always comes first.
            deadline = launch.limits.max_duration + self.deadline_backstop
            self.extra_pod_config = {**base["extra_pod_config"], "activeDeadlineSeconds": deadline}

    def _home_as_workspace(
        self, volume: Volume, home: HomeStorage, group: str
    ) -> dict[str, Any] | None:
        """The chart's home claim (``{pvc_name}``) serves as this workspace.

        So there is one claim, the one KubeSpawner creates and remembers in the user's
        state, and no second mount at the same path; a workspace mounted elsewhere gets
        a second mount of the same claim.
        """
        self.storage_pvc_ensure = True
        if volume.storage_bytes:
            self.storage_capacity = str(volume.storage_bytes)
        if volume.storage_class:
            self.storage_class = volume.storage_class
        if normal_path(volume.mount_path) == home.mount_path:
            return None
        mount: dict[str, Any] = {
            "name": home.volume_name,
            "mountPath": literal(volume.mount_path),
            "readOnly": volume.read_only,
        }
        if volume.sub_path:
            user = self._expand_user_properties("{username}")
            path = expand(volume.sub_path, username=user, group=object_name(group))
            mount["subPath"] = literal(path)
        return mount

    def _volume(self, volume: Volume, group: str) -> tuple[dict[str, Any], dict[str, Any]]:
        name = "eohub-" + object_name(volume.name, max_length=57)
        spec: dict[str, Any] = {"name": name}
        # Kubernetes names want KubeSpawner's slug of the user name, not the raw one,
        # and a slug of the group (any text) in claim names and sub-paths.
        user = self._expand_user_properties("{username}")
        group_slug = object_name(group)
        if volume.kind == "workspace":
            claim = fill_claim_name(volume.claim_name, username=user, group=group_slug)
            if claim != self.pvc_name:
                # A claim remembered from an earlier launch says nothing about this one.
                self._pvc_exists = False
            self.pvc_name = claim
            self.storage_pvc_ensure = True
            if volume.storage_bytes:
                self.storage_capacity = str(volume.storage_bytes)
            if volume.storage_class:
                self.storage_class = volume.storage_class
            spec["persistentVolumeClaim"] = {"claimName": claim}
        elif volume.kind == "pvc":
            spec["persistentVolumeClaim"] = {
                "claimName": fill_claim_name(volume.claim_name, username=user, group=group_slug),
                "readOnly": volume.read_only,
            }
        elif volume.kind == "nfs":
            spec["nfs"] = {
                "server": volume.server,
                "path": volume.path,
                "readOnly": volume.read_only,
            }
        else:
            path = expand(volume.path, username=self.user.name, group=group_slug)
            spec["hostPath"] = {"path": path, "type": "Directory"}
        mount: dict[str, Any] = {
            "name": name,
            "mountPath": volume.mount_path,
            "readOnly": volume.read_only,
        }
        if volume.sub_path:
            mount["subPath"] = expand(volume.sub_path, username=user, group=group_slug)
        return spec, mount

    # -- the spawn ----------------------------------------------------------------------

    def start_message(self) -> str:
        return f"Starting the image {self.image}."

    async def prepare_repository(self, launch: Launch) -> None:
        """Find the repository's image in the registry, or have BinderHub build it."""
        repo, rules = launch.repo, self.repo_rules()
        assert repo is not None
        if rules is None:
            raise RepoLaunchError("The hub's repository settings are invalid; tell an admin.")
        progress = self.launch_progress

        def report(stage: str, message: str) -> None:
            progress.report(Step.BUILD, message, stage)

        image = await self.repo_launches.find_or_build(repo, rules, report)
        if image != self.image:
            # BuildClient refuses another name already; the pod must never differ.
            raise RepoLaunchError(f"The builder's image {image} is not the one checked.")

    async def load_user_options(self) -> None:
        # KubeSpawner applies its profile_list here; the launch is already applied. The
        # pod is checked now, before the workspace claim is created, so that a refused
        # spawn creates nothing.
        await self.get_pod_manifest()

    async def start(self) -> Any:
        try:
            return await super().start()
        except TimeoutError as e:
            # Only the wait for a created pod gets the plain message; a timeout talking
            # to the API keeps KubeSpawner's own.
            reflector = self.pod_reflector
            if reflector is None or f"{self.namespace}/{self.pod_name}" not in reflector.pods:
                raise
            raise TimeoutError(self.not_ready_message()) from e

    def _gone_reason(self, status: int | None) -> str:
        # A pod the cluster ended at its deadline stays, Failed with this reason, until
        # KubeSpawner's poll deletes it: whatever the container's exit status.
        reflector = self.pod_reflector
        pod = reflector.pods.get(f"{self.namespace}/{self.pod_name}") if reflector else None
        pod_status = (pod or {}).get("status") or {}
        if pod_status.get("reason") == DEADLINE_EXCEEDED:
            return MAX_DURATION
        if status is None:
            # KubeSpawner's poll deletes the pod before it returns the exit status.
            status = _exit_code(pod_status)
        return super()._gone_reason(status)

    def _override_sources(self) -> list[str]:
        """The key paths of the profile settings this launch applied, for the admin."""
        launch = self.launch
        if launch is None or launch.profile is None:
            return []
        return [f"{path}.{key}" for path, o in launch.profile.overrides() for key in o]

    def not_ready_message(self) -> str:
        """What to tell the user when the pod exists but did not become ready in time."""
        text = f"Your server's pod did not become ready within {self.start_timeout} seconds"
        events = self.events
        if events:
            text += f"; the cluster last reported: {events[-1].get('message')}"
        return (
            text + ". It may be waiting for a node with room for its size: try again "
            "later or choose a smaller size, and tell an admin if it keeps happening."
        )

    async def get_pod_manifest(self) -> Any:
        pod = await super().get_pod_manifest()
        if not self.allow_unrestricted_pods:
            manifest = self.api.api_client.sanitize_for_serialization(pod)
            problems = restricted_violations(manifest)
            if problems:
                sources = self._override_sources()
                log.error(
                    "Refusing the pod of {server}: it breaks the restricted Pod Security"
                    " Standard ({problems}); profile settings applied: {sources}",
                    server=self._log_name,
                    problems="; ".join(problems),
                    sources=", ".join(sources) or "none",
                )
                raise web.HTTPError(
                    500,
                    "The hub's pod settings break the restricted Pod Security Standard "
                    f"({'; '.join(problems)}); tell an admin.",
                )
        return pod
