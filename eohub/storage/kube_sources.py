"""The Kubernetes sampler's I/O: the Kubernetes API (kubernetes_asyncio) and Prometheus
(tornado's HTTP client). Each returns decoded answers, or raises :class:`SourceError`
with one sentence for the log; what the answers mean is the domain's
(:mod:`eohub.domain.storage.kubelet`, :mod:`eohub.domain.storage.prometheus`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import ConfigException, load_incluster_config, load_kube_config
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from eohub.domain.fields import describe
from eohub.domain.storage import prometheus as prom

PAGE = 500  # items per list request
#: What a request to the API server raises when it gets no usable answer.
API_ERRORS = (ApiException, aiohttp.ClientError, TimeoutError)


class SourceError(Exception):
    """The source could not be read; the message says which and why, for one log line."""


def endpoint(url: str) -> str:
    """``url`` for a message: without the user:password@ and the query it may carry."""
    where = urlsplit(url)
    return f"{where.scheme}://{where.netloc.rpartition('@')[2]}{where.path}"


def api_problem(e: BaseException) -> str:
    """An API server's refusal as a sentence: its status and the Status message."""
    if not isinstance(e, ApiException):
        return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    try:
        message = json.loads(e.body or b"{}").get("message", "")
    except (TypeError, ValueError, AttributeError):
        message = ""
    text = f"{e.status} {e.reason}" + (f": {message}" if message else "")
    if e.status in (401, 403):
        text += " (see the RBAC of the how-to 'Sample storage on Kubernetes')"
    return text


# -- the Kubernetes API --------------------------------------------------------------------


@asynccontextmanager
async def kube_api(kubeconfig: str) -> AsyncIterator[ApiClient]:
    """A client of the API: from ``kubeconfig``, else in-cluster, else the default
    kubeconfig (``$KUBECONFIG``, ``~/.kube/config``), loaded afresh (tokens rotate)."""
    config = Configuration()
    try:
        if kubeconfig:
            await load_kube_config(kubeconfig, client_configuration=config, persist_config=False)
        else:
            try:
                load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
            except ConfigException:
                await load_kube_config(client_configuration=config, persist_config=False)
    except (ConfigException, OSError) as e:
        raise SourceError(
            f"no Kubernetes API to talk to ({e}): run the sampler in the cluster with its "
            "service account, or set KubernetesSampler.kubeconfig"
        ) from None
    async with ApiClient(configuration=config) as api:
        yield api


async def api_get(
    api: ApiClient,
    path: str,
    params: Mapping[str, str],
    query: Mapping[str, Any],
    seconds: float,
) -> Any:
    """The decoded JSON of ``GET path`` within ``seconds`` (a body that is not JSON
    comes back as text); one of :data:`API_ERRORS` if there is no answer with status 200."""
    return await api.call_api(
        path,
        "GET",
        path_params=dict(params),
        query_params=list(query.items()),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        response_types_map={200: "object"},
        _return_http_data_only=True,
        _request_timeout=seconds,
    )


async def api_list(
    api: ApiClient, plural: str, namespace: str, seconds: float, **query: str
) -> list[Any]:
    """Every ``plural`` (pods, persistentvolumeclaims) of ``namespace``, page by page."""
    path = f"/api/v1/namespaces/{{namespace}}/{plural}"
    items: list[Any] = []
    page: dict[str, Any] = {"limit": PAGE, **query}
    while True:
        try:
            body = await api_get(api, path, {"namespace": namespace}, page, seconds)
        except API_ERRORS as e:
            raise SourceError(f"cannot list {plural}: {api_problem(e)}") from None
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise SourceError(f"the list of {plural} is not a Kubernetes list")
        items.extend(body["items"])
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return items
        page["continue"] = token


# -- Prometheus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusSource:
    """One Prometheus, read as the sampler's settings of the same names say.

    ``queries`` maps a metric to the admin's own PromQL for it (``json`` format only);
    the others are asked for with their namespace selector.
    """

    url: str
    namespace: str
    format: str = "json"
    queries: Mapping[str, str] = field(default_factory=dict)
    token_file: str = ""
    ca_file: str = ""
    timeout: float = 30.0

    async def series(
        self, metrics: Sequence[str]
    ) -> tuple[dict[str, list[prom.Series]], list[str]]:
        """Each metric's series: one query each (JSON), or one page for all (text); and
        the parts of the answers that were skipped."""
        if not self.url:
            raise SourceError("the prometheus source needs KubernetesSampler.prometheus_url")
        if self.format == "text":
            url = prom.federate_url(self.url, metrics, self.namespace)
            code, body = await self._fetch(url)
            if code != 200:
                excerpt = " ".join(body[:120].decode("utf-8", "replace").split())
                raise SourceError(f"{endpoint(url)} answered HTTP {code}: {describe(excerpt)}")
            found, problems = prom.parse_exposition(body.decode("utf-8", "replace"), metrics)
            return {m: [s for s in found if s.name == m] for m in metrics}, problems
        base = self.url.rstrip("/") + "/api/v1/query"
        series: dict[str, list[prom.Series]] = {}
        problems = []
        for metric in metrics:
            query = self.queries.get(metric) or prom.selector(metric, self.namespace)
            url = f"{base}?{urlencode({'query': query})}"
            code, body = await self._fetch(url)
            try:
                series[metric], skipped = prom.parse_query_response(body)
            except prom.PrometheusError as e:
                raise SourceError(f"{endpoint(url)} (HTTP {code}): {e}") from None
            if code != 200:
                raise SourceError(f"{endpoint(url)} answered HTTP {code}")
            problems += skipped
        return series, problems

    def _token(self) -> str:
        if not self.token_file:
            return ""
        try:
            return Path(self.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise SourceError(
                f"cannot read KubernetesSampler.prometheus_token_file: {e}"
            ) from None

    async def _fetch(self, url: str) -> tuple[int, bytes]:
        headers = {"Accept": "application/json, text/plain;version=0.0.4;q=0.9, */*;q=0.1"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = HTTPRequest(
            url,
            headers=headers,
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
            ca_certs=self.ca_file or None,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (HTTPClientError, OSError) as e:
            raise SourceError(f"Prometheus at {endpoint(url)} did not answer: {e}") from None
        return response.code, response.body or b""


__all__ = [
    "API_ERRORS",
    "PrometheusSource",
    "SourceError",
    "api_get",
    "api_list",
    "api_problem",
    "endpoint",
    "kube_api",
]
