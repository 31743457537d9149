"""The Zero to JupyterHub deploy kit on a real hub: spawns through profiles, policed.

The kit's ``deploy/z2jh/values.yaml``, with a test overlay, is mapped onto the hub's
config the way chart 4.4.0's config file maps it (``tests/support/z2jh.py``, run in
the hub process: profileList, storage, cloudMetadata, extraFiles, services,
loadRoles). The hub runs eohub's ``QuotaKubeSpawner`` against the Kubernetes API fake
(in a thread, each pod answering HTTP on a loopback address of its own), and the
accounting service runs beside it as the kit's Deployment runs it. Spawns go through
the three wire formats a user meets (REST ``user_options``, KubeSpawner's form fields
on ``POST /hub/spawn``, JupyterHub 6's ``/hub/spawn?opt-...`` links), and what each
user's groups hide (a profile, an option, a choice, the unlisted choice) is refused in
every one of them, without a pod.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from eohub.domain.launch.pod_security import restricted_violations
from tests.support.fake_kube_server import KubeAPIThread
from tests.support.hub import Hub
from tests.support.kube_api import validate, write_kubeconfig
from tests.support.process import ServiceProcess, ServiceStartError, free_port
from tests.support.tools import DROPIN_DIR, REPO_ROOT
from tests.support.z2jh import chart_secret, load_values, merge_values
from tests.support.z2jh_hub import ACCOUNTING, start_accounting, start_chart_hub

pytestmark = pytest.mark.hub

VALUES = REPO_ROOT / "deploy" / "z2jh" / "values.yaml"
NAMESPACE = "eohub-z2jh"
KIT_IMAGE = "quay.io/jupyter/scipy-notebook:2026-11-30"  # the kit's "pangeo" profile
EO_IMAGE = "quay.io/eohub/eo-notebook:2026.11"
ML_IMAGE = "quay.io/eohub/ml-notebook:2026.11"
STAFF_IMAGE = "registry.example.org/internal/staff-tools:3"
GROUPS = {"climate": ["alice"], "eo-ml": ["bob"], "staff": ["carol"]}
#: Group restriction at every level, added after the kit's own profiles.
TEST_PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Earth observation",
        "slug": "eo",
        "kubespawner_override": {
            "cpu_guarantee": 0.5,
            "cpu_limit": 1,
            "mem_guarantee": "1G",
            "mem_limit": "2G",
        },
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "eo": {
                        "display_name": "EO stack",
                        "default": True,
                        "kubespawner_override": {"image": EO_IMAGE},
                    },
                    "ml": {
                        "display_name": "ML stack",
                        "allowed_groups": ["eo-ml"],
                        "kubespawner_override": {"image": ML_IMAGE},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "An image of ours",
                    "allowed_groups": ["eo-ml"],
                    "validation_regex": r"quay\.io/eohub/[a-z0-9-]+:[0-9a-z.]+",
                    "validation_message": "Must be an image of quay.io/eohub, with a tag",
                    "kubespawner_override": {"image": "{value}"},
                },
            },
            "resources": {
                "display_name": "Resources",
                "allowed_groups": ["eo-ml"],
                "choices": {
                    "small": {"display_name": "Small", "default": True},
                    "large": {
                        "display_name": "4 CPU, 8 GiB",
                        "kubespawner_override": {
                            "cpu_guarantee": 4,
                            "cpu_limit": 4,
                            "mem_guarantee": "8G",
                            "mem_limit": "8G",
                        },
                    },
                },
            },
        },
    },
    {
        "display_name": "Staff tools",
        "slug": "staff",
        "allowed_groups": ["staff"],
        "kubespawner_override": {"image": STAFF_IMAGE, "cpu_guarantee": 1, "mem_guarantee": "1G"},
    },
]
ACCOUNTING_CONFIG = f"""
c.AccountingService.reconcile_interval = 0
c.AccountingService.groups = {{name: {{"allocation": "month"}} for name in {sorted(GROUPS)!r}}}
"""


def overlay(kube_url: str, accounting_url: str) -> dict[str, Any]:
    """The test's values over the kit's: a login with groups, the API fake, local URLs."""
    kit_profiles = load_values(VALUES)["singleuser"]["profileList"]
    return {
        "hub": {
            "config": {
                "JupyterHub": {
                    "authenticator_class": "dummy",
                    "load_groups": {g: {"users": users} for g, users in GROUPS.items()},
                },
                "Authenticator": {"allow_all": True, "admin_users": ["admin"]},
                "KubeSpawner": {
                    "k8s_api_host": kube_url,
                    "namespace": NAMESPACE,
                    "k8s_api_request_retry_timeout": 10,
                },
            },
            "services": {ACCOUNTING: {"url": accounting_url}},
            "extraEnv": {"EOHUB_ACCOUNTING_URL": accounting_url},
        },
        "singleuser": {"profileList": kit_profiles + TEST_PROFILES},
    }


def dropin_files(values: dict[str, Any]) -> dict[str, str]:
    """The text ``helm --set-file`` gives each mounted drop-in: the repository's file."""
    files = {}
    for spec in values["hub"]["extraFiles"].values():
        text = (DROPIN_DIR / PurePosixPath(spec["mountPath"]).name).read_text()
        files[spec["mountPath"]] = text
    return files


def chart_values(kube_url: str, accounting_url: str) -> dict[str, Any]:
    return merge_values(load_values(VALUES), overlay(kube_url, accounting_url))


class ChartHub:
    """The hub, the fake cluster and the accounting service of this module."""

    def __init__(self, hub: Hub, kube: KubeAPIThread, accounting: ServiceProcess) -> None:
        self.hub, self.kube, self.accounting = hub, kube, accounting

    def pods(self, user: str) -> list[dict[str, Any]]:
        """Every pod the hub asked for on behalf of ``user``, as sent, oldest first."""
        return [
            p
            for p in self.kube.read(lambda api: api.created["pods"])
            if p["metadata"]["annotations"].get("hub.jupyter.org/username") == user
        ]

    def pod_count(self) -> int:
        return len(self.kube.read(lambda api: api.created["pods"]))

    def wait_ready(self, user: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.hub.server(user)
            assert server is not None, self.hub.process.log_tail()
            if server["ready"]:
                return server
            time.sleep(0.2)
        raise AssertionError(f"{user}'s server not ready:\n{self.hub.process.log_tail()}")

    def accounting_get(self, path: str) -> Any:
        token = self.hub.api("POST", "/users/admin/tokens", json={"note": "z2jh test"})
        token.raise_for_status()
        headers = {"Authorization": f"token {token.json()['token']}"}
        url = f"{self.hub.url}/services/{ACCOUNTING}/{path}"
        response = requests.get(url, headers=headers, timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartHub]:
    workdir = tmp_path_factory.mktemp("z2jh")
    port, accounting_url = free_port(), f"http://127.0.0.1:{free_port()}"
    with KubeAPIThread() as kube:
        values = chart_values(kube.url, accounting_url)
        secret = chart_secret(values)
        accounting = start_accounting(
            workdir / "accounting",
            url=accounting_url,
            hub_url=f"http://127.0.0.1:{port}",
            token=secret[f"hub.services.{ACCOUNTING}.apiToken"],
            config=ACCOUNTING_CONFIG,
        )
        try:
            kubeconfig = write_kubeconfig(workdir / "kubeconfig", kube.url)
            hub = start_chart_hub(
                workdir / "hub",
                values,
                secret,
                dropin_files(values),
                port=port,
                env={"KUBECONFIG": str(kubeconfig)},
            )
            try:
                for name in ("admin", *(u for users in GROUPS.values() for u in users)):
                    hub.ensure_user(name)
                yield ChartHub(hub, kube, accounting)
            finally:
                hub.process.stop(timeout=20)
        finally:
            accounting.stop()


# -- the kit's profile, end to end ------------------------------------------------------


def test_a_kit_profile_spawns_a_restricted_pod_on_the_charts_home_claim(chart: ChartHub) -> None:
    hub = chart.hub
    server = hub.spawn("alice", options={"profile": "pangeo"})
    assert server["user_options"]["profile"] == "pangeo"
    (pod,) = chart.pods("alice")
    validate(pod)  # the fake validated it too: it was created
    assert chart.kube.read(lambda api: api.rejected) == []
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == KIT_IMAGE
    assert container["resources"]["requests"] == {"cpu": 1.0, "memory": 2 * 1024**3}
    assert "initContainers" not in spec or not spec["initContainers"]  # no block-cloud-metadata
    assert restricted_violations(pod) == []
    # Drop-in 00 ran in the chart's namespace (hub.extraFiles): JupyterLab by default.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["JUPYTERHUB_DEFAULT_URL"], env["EOHUB_GROUP"]) == ("/lab", "climate")
    # The chart's home storage is the workspace: its claim, once, at /home/jovyan.
    (volume,) = spec["volumes"]
    assert volume["persistentVolumeClaim"] == {"claimName": "claim-alice"}
    (mount,) = container["volumeMounts"]
    assert (mount["name"], mount["mountPath"]) == (volume["name"], "/home/jovyan")
    claims = chart.kube.read(lambda api: api.created["persistentvolumeclaims"])
    assert [c["metadata"]["name"] for c in claims if "alice" in c["metadata"]["name"]] == [
        "claim-alice"
    ]
    # The server answers where the pod's IP says (the proxy routes there).
    running = chart.kube.read(lambda api: api.get("pods", NAMESPACE, pod["metadata"]["name"]))
    assert running is not None
    answer = requests.get(f"{hub.url}{server['url']}api", allow_redirects=False, timeout=30)
    assert answer.json() == {"stand_in_for": pod["metadata"]["name"]}
    hub.stop("alice")
    assert chart.kube.read(lambda api: api.names("pods")) == []
    assert chart.kube.network.listening() == 0
    # The session is accounted: charged to alice's one group, for what the pod asked.
    sessions = [s for s in wait_sessions(chart, "user=alice") if s["profile"] == "pangeo"]
    assert [(s["group"], s["profile"], s["image"]) for s in sessions] == [
        ("climate", "pangeo", KIT_IMAGE)
    ]
    assert (sessions[0]["cpu"], sessions[0]["memory_bytes"]) == (1, 2 * 1024**3)
    assert sessions[0]["stopped_at"] is not None
    rows = chart.accounting_get("api/usage?group=climate&by=user")["usage"]
    assert [(r["group"], r["user"]) for r in rows] == [("climate", "alice")], rows
    assert rows[0]["core_hours"] > 0, rows


def wait_sessions(chart: ChartHub, query: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The closed sessions matching ``query``, once the hub's outbox has sent the stop."""
    deadline = time.monotonic() + timeout
    while True:
        found = chart.accounting_get(f"api/sessions?{query}")["sessions"]
        closed = [s for s in found if s["stopped_at"]]
        if closed or time.monotonic() > deadline:
            return closed
        time.sleep(0.5)


# -- group restriction, through every wire format ---------------------------------------


def form_fields(options: dict[str, str]) -> dict[str, str]:
    """REST ``user_options`` as KubeSpawner's form posts them for the chosen profile."""
    slug = options["profile"]
    fields = {"profile": slug}
    for key, value in options.items():
        if key != "profile":
            fields[f"profile-option-{slug}--{key}"] = value
            if key.endswith("--unlisted-choice"):
                # The form's select says "Other...", the text box holds the value.
                select = key.removesuffix("--unlisted-choice")
                fields.setdefault(f"profile-option-{slug}--{select}", "unlisted-choice")
    return fields


def spawn_link(hub: Hub, options: dict[str, str], prefix: str = "opt-") -> str:
    """A ``/hub/spawn`` link with JupyterHub 6's ``opt-`` names (or JupyterHub 5's
    plain ones, which 6 still takes, with a warning)."""
    return f"{hub.url}/hub/spawn?{urlencode({prefix + k: v for k, v in options.items()})}"


def request_spawn(chart: ChartHub, wire: str, user: str, options: dict[str, str]) -> Any:
    """Ask for ``user``'s server in one wire format; the status and the message shown."""
    hub = chart.hub
    if wire == "rest":
        response = hub.api("POST", f"/users/{user}/server", json=options)
        text = response.json().get("message", "") if response.status_code >= 400 else ""
        return response.status_code, text
    session = hub.login(user, "any password")  # the dummy authenticator takes any
    if wire == "form":
        page = session.get(f"{hub.url}/hub/spawn", timeout=30)
        page.raise_for_status()
        xsrf = session.cookies.get("_xsrf") or ""
        data = {**form_fields(options), "_xsrf": xsrf}
        response = session.post(
            f"{hub.url}/hub/spawn", data=data, allow_redirects=False, timeout=60
        )
    else:
        link = spawn_link(hub, options, "opt-" if wire == "link" else "")
        response = session.get(link, allow_redirects=False, timeout=60)
    return response.status_code, html.unescape(response.text)


WIRES = ["rest", "form", "link", "plain-link"]
LINKS = ("link", "plain-link")
#: A /hub/spawn link starts a server at once, so a value typed into a free-text box is
#: refused there whatever it is: it needs the user's own review on the form.
LINK_REFUSES_OWN_VALUE = "A value of your own (image--unlisted-choice) is used only after"


def typed(options: dict[str, str]) -> bool:
    return any(k.endswith("--unlisted-choice") for k in options)


ALLOWED = [
    pytest.param(
        "bob",
        {"profile": "eo", "image": "ml", "resources": "large"},
        ML_IMAGE,
        4,
        id="bob-ml-large",
    ),
    pytest.param(
        "bob",
        {"profile": "eo", "image--unlisted-choice": "quay.io/eohub/own:1.2"},
        None,
        0.5,
        id="bob-unlisted",
    ),
    pytest.param("alice", {"profile": "eo"}, EO_IMAGE, 0.5, id="alice-default-choice"),
    pytest.param("alice", {"profile": "eo", "image": "eo"}, EO_IMAGE, 0.5, id="alice-eo"),
    pytest.param("carol", {"profile": "staff"}, STAFF_IMAGE, 1, id="carol-staff"),
    pytest.param(
        "alice",
        {"profile": "rstudio"},
        "docker.io/rocker/geospatial:4.4",
        1,
        id="alice-kit-rstudio",
    ),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(("user", "options", "image", "cpu"), ALLOWED)
def test_an_allowed_profile_launch_gives_its_pod(
    chart: ChartHub, wire: str, user: str, options: dict[str, str], image: str | None, cpu: float
) -> None:
    before = len(chart.pods(user))
    status, text = request_spawn(chart, wire, user, options)
    if wire in LINKS and typed(options):
        assert status == 400, text[-2000:]
        assert LINK_REFUSES_OWN_VALUE in text
        assert chart.hub.server(user) is None
        assert len(chart.pods(user)) == before
        return
    assert status in (201, 202, 302), text
    server = chart.wait_ready(user)
    try:
        pods = chart.pods(user)
        assert len(pods) == before + 1
        pod = pods[-1]
        (container,) = pod["spec"]["containers"]
        wanted = image or options["image--unlisted-choice"]
        assert container["image"] == wanted
        assert container["resources"]["requests"]["cpu"] == cpu
        assert restricted_violations(pod) == []
        labels = pod["metadata"]["labels"]
        assert labels["eohub.io/group"] == next(g for g, u in GROUPS.items() if user in u)
        assert server["user_options"]["profile"] == options["profile"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["JUPYTERHUB_DEFAULT_URL"] == (
            "/rstudio" if options["profile"] == "rstudio" else "/lab"
        )
    finally:
        chart.hub.stop(user)


FORBIDDEN = [
    # A profile the user's groups do not allow, and one that does not exist: one answer.
    pytest.param(
        "bob",
        {"profile": "staff"},
        "profile: no profile 'staff' is available to you",
        id="hidden-profile",
    ),
    pytest.param(
        "alice",
        {"profile": "nope"},
        "profile: no profile 'nope' is available to you",
        id="unknown-profile",
    ),
    pytest.param(
        "alice",
        {"profile": "eo", "resources": "large"},
        "resources: is not an option of profile 'Earth observation'",
        id="hidden-option",
    ),
    pytest.param(
        "alice",
        {"profile": "eo", "image": "ml"},
        "image: 'ml' is not one of the choices available to you",
        id="hidden-choice",
    ),
    pytest.param(
        "alice",
        {"profile": "eo", "image--unlisted-choice": "quay.io/eohub/own:1.2"},
        "image: does not take a value of your own here",
        id="hidden-unlisted-choice",
    ),
    # Unlisted values must match validation_regex in full, not only at the start.
    pytest.param(
        "bob",
        {"profile": "eo", "image--unlisted-choice": "quay.io/eohub/own:1.2;evil"},
        "image: Must be an image of quay.io/eohub, with a tag",
        id="unlisted-with-a-tail",
    ),
    pytest.param(
        "bob",
        {"profile": "eo", "image--unlisted-choice": "docker.io/evil/miner:1"},
        "image: Must be an image of quay.io/eohub, with a tag",
        id="unlisted-elsewhere",
    ),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(("user", "options", "message"), FORBIDDEN)
def test_a_forbidden_profile_launch_is_refused_without_a_pod(
    chart: ChartHub, wire: str, user: str, options: dict[str, str], message: str
) -> None:
    before = chart.pod_count()
    status, text = request_spawn(chart, wire, user, options)
    assert status == 400, text[-2000:]
    if wire in LINKS and typed(options):
        message = LINK_REFUSES_OWN_VALUE
    else:
        assert "Invalid launch options (" in text
    assert message in text, text[-2000:]
    assert chart.hub.server(user) is None
    assert chart.pod_count() == before


# -- the chart's default that eohub refuses ---------------------------------------------


def test_the_charts_metadata_blocker_stops_the_hub_naming_the_value(tmp_path: Path) -> None:
    # singleuser.cloudMetadata.blockWithIptables: true (the chart's default) adds a
    # privileged root init container; the start-up checks name the value to change.
    values = merge_values(
        chart_values("http://127.0.0.1:9", "http://127.0.0.1:9"),
        {"singleuser": {"cloudMetadata": {"blockWithIptables": True}}},
    )
    try:
        started = start_chart_hub(
            tmp_path / "hub",
            values,
            chart_secret(values),
            dropin_files(values),
            port=free_port(),
            env={},
        )
    except ServiceStartError as e:
        failed = e
    else:
        started.process.stop(timeout=20)
        pytest.fail("the hub started with the chart's privileged init container")
    log = (tmp_path / "hub" / "jupyterhub.log").read_text()
    assert "KubeSpawner.init_containers" in log, str(failed)
    assert re.search(r"singleuser\.cloudMetadata\.blockWithIptables: ?false", log), log[-3000:]


def test_a_link_mixing_plain_and_opt_names_starts_nothing_it_did_not_name(
    chart: ChartHub,
) -> None:
    # JupyterHub 6 drops the plain names when any has the opt- prefix: the profile is
    # lost, and a choice without a profile is no launch option.
    before = chart.pod_count()
    session = chart.hub.login("bob", "any password")
    link = f"{chart.hub.url}/hub/spawn?profile=eo&opt-image=ml"
    response = session.get(link, allow_redirects=False, timeout=60)
    assert response.status_code == 400, response.text[-2000:]
    assert "Invalid launch options (image: is not a launch option" in response.text
    assert chart.hub.server("bob") is None
    assert chart.pod_count() == before


def test_the_kits_hub_names_the_usage_pages_in_its_services_menu(chart: ChartHub) -> None:
    session = chart.hub.login("bob", "any password")
    home = session.get(f"{chart.hub.url}/hub/home", timeout=30)
    assert home.status_code == 200
    item = r'<a class="dropdown-item" href="/services/eohub-accounting/">\s*Usage'
    assert re.search(item, home.text), home.text[-3000:]


# -- the launch form's spawn route (drop-in 00 and hub.extraConfig) ---------------------


def test_a_refused_named_server_launch_comes_back_on_that_servers_form(chart: ChartHub) -> None:
    # The kit installs eohub's spawn route; the form's Start posts there. A refused
    # launch of bob's server "second" shows that server's form with what bob chose.
    hub, before = chart.hub, chart.pod_count()
    session = hub.login("bob", "any password")
    form = session.get(f"{hub.url}/hub/spawn/bob/second", timeout=30)
    assert form.status_code == 200, form.text[-2000:]
    assert "/hub/eohub/spawn/bob/second" in form.text  # the form's Start goes there
    options = {"profile": "eo", "resources": "large", "image--unlisted-choice": "docker.io/x:1"}
    data = {**form_fields(options), "_xsrf": session.cookies.get("_xsrf") or ""}
    response = session.post(
        f"{hub.url}/hub/eohub/spawn/bob/second", data=data, allow_redirects=False, timeout=60
    )
    page = html.unescape(response.text)
    assert response.status_code == 400, page[-3000:]
    assert "image: Must be an image of quay.io/eohub, with a tag" in page
    assert 'action="/hub/spawn/bob/second' in page, page[-3000:]
    assert re.search(r'value="eo"[^>]*checked', page), page[-3000:]
    assert re.search(r'<option[^>]*value="large"[^>]*selected', page), page[-3000:]
    assert hub.server("bob", "second") is None
    assert chart.pod_count() == before
