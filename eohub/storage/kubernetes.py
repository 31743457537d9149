"""Sampling the users' and groups' persistent volume claims of a Kubernetes namespace.

:class:`KubernetesSampler` reads how full each claim is from one of two sources
(``source``):

``kubelet``
    Through the Kubernetes API (kubernetes_asyncio; in-cluster service account, or a
    kubeconfig): list the namespace's claims and its running pods, then ask each node
    where a running pod mounts a claim for its kubelet's stats summary
    (``/api/v1/nodes/<node>/proxy/stats/summary``), a few nodes at a time. A node that
    does not answer is logged by name and the others still count.
``prometheus``
    ``kubelet_volume_stats_used_bytes`` and ``kubelet_volume_stats_inodes_used`` from a
    Prometheus that scrapes the kubelets: instant queries (``/api/v1/query``, JSON) or
    one page in the text format (``/federate``, or a ``/metrics`` URL). Whose each claim
    is comes from the Kubernetes API (listing claims), or, with ``claims_from =
    "kube-state-metrics"``, from kube-state-metrics' claim annotations in the same
    Prometheus: then the sampler needs no Kubernetes access at all.

Either way only mounted claims are measured: a claim no running pod mounts has no
stats this round, and its last sample stands. Whose a claim is:
:mod:`eohub.domain.storage.claims`; the parsing: :mod:`eohub.domain.storage.kubelet` and
:mod:`eohub.domain.storage.prometheus`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes_asyncio.client import ApiClient
from traitlets import CaselessStrEnum, Dict, Float, Integer, TraitError, Unicode, default, validate

from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.fields import describe
from eohub.domain.storage import prometheus as prom
from eohub.domain.storage.claims import (
    DEFAULT_GROUP_CLAIM_USER,
    DEFAULT_GROUP_KEY,
    USERNAME_KEY,
    ClaimMeta,
    ClaimOwner,
    ClaimRules,
    check_group_claim_user,
    claim_meta,
    claim_owners,
    measured_owners,
)
from eohub.domain.storage.kubelet import VolumeUsage, combine, nodes_to_ask, parse_summary
from eohub.domain.storage.owners import name_problem
from eohub.logs import get_logger
from eohub.storage.kube_sources import (
    API_ERRORS,
    PrometheusSource,
    SourceError,
    api_get,
    api_list,
    api_problem,
    endpoint,
    kube_api,
)
from eohub.storage.sampler import Sampler

log = get_logger(__name__)

NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_MAX_PROBLEMS = 5  # parts of an answer named in one log line


class KubernetesSampler(Sampler):
    """The persistent volume claims of users (and groups) in one namespace."""

    source = CaselessStrEnum(
        ["kubelet", "prometheus"],
        default_value="kubelet",
        help="""Where claims' usage comes from. ``kubelet``: each node's stats summary,
        through the Kubernetes API (needs ``get`` on ``nodes/proxy``, cluster-wide).
        ``prometheus``: the ``kubelet_volume_stats_*`` metrics of a Prometheus that
        scrapes the kubelets (``prometheus_url``).""",
    ).tag(config=True)

    namespace = Unicode(
        help="""The namespace of the users' claims (the hub's). Default: the sampler
        pod's own namespace, else ``default``.""",
    ).tag(config=True)

    @default("namespace")
    def _namespace_default(self) -> str:
        try:
            return Path(NAMESPACE_FILE).read_text(encoding="utf-8").strip() or "default"
        except OSError:
            return "default"

    @validate("namespace")
    def _check_namespace(self, proposal: dict[str, Any]) -> str:
        value: str = proposal["value"]
        if not _DNS_LABEL.fullmatch(value):
            raise TraitError(
                f"KubernetesSampler.namespace {describe(value)} is not a namespace name"
            )
        return value

    kubeconfig = Unicode(
        "",
        help="""A kubeconfig file to reach the Kubernetes API with. Empty: the pod's
        service account when run in the cluster, else ``$KUBECONFIG`` or
        ``~/.kube/config``.""",
    ).tag(config=True)

    node_concurrency = Integer(
        4,
        min=1,
        help="""How many nodes' stats summaries are asked for at once (``kubelet``
        source). Each is one request to the API server, which relays it to the node.""",
    ).tag(config=True)

    request_timeout = Float(
        30.0,
        min=0.1,
        help="Seconds each request to the Kubernetes API or to Prometheus may take.",
    ).tag(config=True)

    prometheus_url = Unicode(
        "",
        help="""The ``prometheus`` source. With ``prometheus_format = "json"``:
        Prometheus' base URL (``http://prometheus-server.monitoring``), queried at
        ``/api/v1/query``. With ``"text"``: the page to read, a ``/federate`` URL (the
        sampler adds the ``match[]`` selectors unless the URL has its own) or a
        ``/metrics`` URL.""",
    ).tag(config=True)

    @validate("prometheus_url")
    def _check_prometheus_url(self, proposal: dict[str, Any]) -> str:
        value: str = proposal["value"]
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise TraitError(
                f"KubernetesSampler.prometheus_url {describe(endpoint(value))} must be an "
                "http:// or https:// URL"
            )
        return value

    prometheus_format = CaselessStrEnum(
        ["json", "text"],
        default_value="json",
        help="""``json``: instant queries through Prometheus' HTTP API. ``text``: one page
        in the text exposition format (``/federate`` or ``/metrics``).""",
    ).tag(config=True)

    prometheus_query = Unicode(
        "",
        help="""The PromQL of claims' used bytes (``json`` format), written out in full
        with the namespace. Empty: ``kubelet_volume_stats_used_bytes{namespace="<ns>"}``.
        The answer must be an instant vector with a ``persistentvolumeclaim`` label; a
        ``namespace`` label, when kept, must be the sampler's.""",
    ).tag(config=True)

    prometheus_inodes_query = Unicode(
        "",
        help="""The PromQL of claims' used inodes (files), as ``prometheus_query``.
        Empty: ``kubelet_volume_stats_inodes_used{namespace="<ns>"}``.""",
    ).tag(config=True)

    prometheus_token_file = Unicode(
        "",
        help="""A file holding a bearer token for Prometheus (read at each round, sent as
        ``Authorization: Bearer``, never logged). Empty: no token.""",
    ).tag(config=True)

    prometheus_ca_file = Unicode(
        "",
        help="A CA bundle to verify an https Prometheus with. Empty: the system's.",
    ).tag(config=True)

    claims_from = CaselessStrEnum(
        ["kubernetes", "kube-state-metrics"],
        default_value="kubernetes",
        help="""Where the ``prometheus`` source learns whose each claim is.
        ``kubernetes``: list the namespace's claims (needs ``list`` on
        ``persistentvolumeclaims`` there). ``kube-state-metrics``: the
        ``kube_persistentvolumeclaim_annotations`` and ``_labels`` series in the same
        Prometheus, which kube-state-metrics exports only for the keys it is allowed
        (``--metric-annotations-allowlist=persistentvolumeclaims=[hub.jupyter.org/username,eohub.io/group]``);
        the sampler then needs no Kubernetes access. The ``kubelet`` source always lists
        claims through the API.""",
    ).tag(config=True)

    group_annotation = Unicode(
        DEFAULT_GROUP_KEY,
        help="""The claim annotation (or, without it, label) naming the group a claim's
        storage is charged to. Wins over the shared group mapping.""",
    ).tag(config=True)

    claim_groups = Dict(
        value_trait=Unicode(),
        help="""The group charged for each claim, by claim name, e.g.
        ``{"group-climate": "climate"}``. Wins over the claim's annotation. A claim with
        no user annotation but a group is that group's shared space, sampled as the user
        ``group_claim_user`` names.""",
    ).tag(config=True)

    @validate("claim_groups")
    def _check_claim_groups(self, proposal: dict[str, Any]) -> dict[str, str]:
        value: dict[str, str] = proposal["value"]
        for claim, group in value.items():
            problem = name_problem(group, "group")
            if problem:
                raise TraitError(f"KubernetesSampler.claim_groups[{claim!r}]: {group!r} {problem}")
        return value

    group_claim_user = Unicode(
        DEFAULT_GROUP_CLAIM_USER,
        help="""The user a group's shared claim is sampled as: a template that may use
        ``{group}`` (default: the group's name). Its storage is charged to the group.""",
    ).tag(config=True)

    @validate("group_claim_user")
    def _check_group_claim_user(self, proposal: dict[str, Any]) -> str:
        try:
            return check_group_claim_user(proposal["value"])
        except ValueError as e:
            raise TraitError(f"KubernetesSampler.group_claim_user: {e}") from None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Claims skipped for want of an owner are logged once per process, not per round.
        self._skipped_logged: set[str] = set()

    # -- the round ---------------------------------------------------------------------

    async def measure(self) -> list[StorageSample]:
        try:
            if self.source == "kubelet":
                owners, usage = await self._from_kubelets()
            else:
                owners, usage = await self._from_prometheus()
        except SourceError as e:
            log.error(
                "No storage measured in namespace {namespace}: {error}",
                namespace=self.namespace,
                error=e,
            )
            self.incomplete = True
            return []
        measured = measured_owners(usage, owners, self.namespace)
        unmeasured = sorted(set(owners) - set(usage))
        log.info(
            "Claims of namespace {namespace}: {owned} with an owner, {unmeasured} not "
            "measured this round (mounted by no running pod, or on a node that did not "
            "answer: their last samples stand)",
            namespace=self.namespace,
            owned=len(owners),
            unmeasured=len(unmeasured),
            source=self.source,
        )
        if unmeasured:
            log.debug("Claims not measured this round", claims=",".join(unmeasured))
        return await self.resolve_groups(measured)

    def _owners(self, claims: Iterable[ClaimMeta]) -> dict[str, ClaimOwner]:
        rules = ClaimRules(self.group_annotation, dict(self.claim_groups), self.group_claim_user)
        owners, skipped = claim_owners(claims, rules)
        for claim, reason in sorted(skipped.items()):
            if claim not in self._skipped_logged:
                self._skipped_logged.add(claim)
                log.info("Claim {claim} not sampled: {reason}", claim=claim, reason=reason)
        return owners

    # -- the kubelets -------------------------------------------------------------------

    async def _api_claims(self, api: ApiClient) -> list[ClaimMeta]:
        objects = await api_list(
            api, "persistentvolumeclaims", self.namespace, self.request_timeout
        )
        return [c for c in map(claim_meta, objects) if c is not None]

    async def _from_kubelets(self) -> tuple[dict[str, ClaimOwner], dict[str, VolumeUsage]]:
        async with kube_api(self.kubeconfig) as api:
            owners = self._owners(await self._api_claims(api))
            if not owners:
                return owners, {}
            running = {"fieldSelector": "status.phase=Running"}
            pods = await api_list(api, "pods", self.namespace, self.request_timeout, **running)
            nodes = nodes_to_ask(pods, owners)
            limit = asyncio.Semaphore(self.node_concurrency)
            parts = await asyncio.gather(*(self._node_usage(api, n, limit) for n in sorted(nodes)))
        return owners, combine(parts)

    async def _node_usage(
        self, api: ApiClient, node: str, limit: asyncio.Semaphore
    ) -> dict[str, VolumeUsage]:
        """The namespace's claim usage on ``node``; {} (and the node logged) if it has none."""
        path = "/api/v1/nodes/{name}/proxy/stats/summary"
        async with limit:
            try:
                body = await api_get(api, path, {"name": node}, {}, self.request_timeout)
            except API_ERRORS as e:
                problem = api_problem(e)
            else:
                problem = "" if isinstance(body, dict) else "the answer is not a stats summary"
        if problem:
            log.error(
                "No stats summary from node {node} ({problem}); the claims mounted there "
                "keep their last sample",
                node=node,
                problem=problem,
            )
            self.incomplete = True
            return {}
        parsed = parse_summary(body, self.namespace)
        self._log_problems(f"Node {node}: stats summary", parsed.problems)
        return parsed.usage

    # -- Prometheus --------------------------------------------------------------------

    async def _from_prometheus(self) -> tuple[dict[str, ClaimOwner], dict[str, VolumeUsage]]:
        from_ksm = self.claims_from == "kube-state-metrics"
        metrics = [prom.USED_BYTES, prom.INODES_USED]
        if from_ksm:
            metrics += [prom.KSM_ANNOTATIONS, prom.KSM_LABELS]
        source = PrometheusSource(
            url=self.prometheus_url,
            namespace=self.namespace,
            format=self.prometheus_format,
            queries={
                prom.USED_BYTES: self.prometheus_query,
                prom.INODES_USED: self.prometheus_inodes_query,
            },
            token_file=self.prometheus_token_file,
            ca_file=self.prometheus_ca_file,
            timeout=self.request_timeout,
        )
        series, problems = await source.series(metrics)
        if from_ksm:
            keys = [USERNAME_KEY, self.group_annotation]
            ksm = series[prom.KSM_ANNOTATIONS] + series[prom.KSM_LABELS]
            claims = prom.ksm_claims(ksm, self.namespace, keys)
        else:
            async with kube_api(self.kubeconfig) as api:
                claims = await self._api_claims(api)
        owners = self._owners(claims)
        usage, more = prom.claim_usage(
            series[prom.USED_BYTES], series[prom.INODES_USED], self.namespace
        )
        self._log_problems("Prometheus: answers", problems + more)
        return owners, usage

    def _log_problems(self, where: str, problems: Iterable[str]) -> None:
        problems = list(problems)
        if problems:
            log.warning(
                "{where}: {count} parts skipped: {problems}",
                where=where,
                count=len(problems),
                problems="; ".join(problems[:_MAX_PROBLEMS]),
            )


__all__ = ["KubernetesSampler", "SourceError"]
