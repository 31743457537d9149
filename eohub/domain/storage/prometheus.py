"""Claim usage from Prometheus: its HTTP API's JSON, and the text exposition format.

The kubelet exports each mounted claim's usage as ``kubelet_volume_stats_used_bytes``
and ``kubelet_volume_stats_inodes_used``, labelled ``namespace`` and
``persistentvolumeclaim``. The sampler reads them either from an instant query
(``/api/v1/query``, whose answer is :func:`parse_query_response`'s input) or from a page
in the text format (a Prometheus ``/federate`` or a kubelet's ``/metrics``:
:func:`parse_exposition`). kube-state-metrics' ``kube_persistentvolumeclaim_annotations``
and ``_labels`` can say whose each claim is (:func:`ksm_claims`), for a sampler with no
access to the Kubernetes API at all.

An answer Prometheus marks as an error, or that is not JSON, raises
:class:`PrometheusError` with a sentence an admin can act on; a series that does not
have the expected shape is skipped with a reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eohub.domain.fields import describe
from eohub.domain.storage.claims import ClaimMeta
from eohub.domain.storage.kubelet import MAX_COUNT, VolumeUsage

USED_BYTES = "kubelet_volume_stats_used_bytes"
INODES_USED = "kubelet_volume_stats_inodes_used"
KSM_ANNOTATIONS = "kube_persistentvolumeclaim_annotations"
KSM_LABELS = "kube_persistentvolumeclaim_labels"
CLAIM_LABEL = "persistentvolumeclaim"
NAMESPACE_LABEL = "namespace"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_KSM_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_KSM_CAPS = re.compile(r"([a-z0-9])([A-Z])")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class PrometheusError(ValueError):
    """Prometheus refused the query, or answered with something that is not its API."""


@dataclass(frozen=True)
class Series:
    """One sample: the metric's name ("" when a query's aggregation dropped it), its
    labels, and its value."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    value: float = 0.0


def quote(text: str) -> str:
    """``text`` as a PromQL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(metric: str, namespace: str) -> str:
    """The PromQL selector of ``metric``'s series in ``namespace``."""
    return f"{metric}{{{NAMESPACE_LABEL}={quote(namespace)}}}"


def federate_url(url: str, metrics: Iterable[str], namespace: str) -> str:
    """``url`` with one ``match[]`` per metric, unless it already names its own."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not parts.path.rstrip("/").endswith("/federate") or any(k == "match[]" for k, _ in query):
        return url
    query += [("match[]", selector(m, namespace)) for m in metrics]
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- the HTTP API's JSON -------------------------------------------------------------------


def _json(body: str | bytes) -> Mapping[str, object]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        start = body[:80].decode("utf-8", "replace") if isinstance(body, bytes) else body[:80]
        raise PrometheusError(
            f"the answer is not JSON ({describe(' '.join(start.split()))}): is the URL "
            "Prometheus' own, without /api/v1/query?"
        ) from None
    if not isinstance(data, Mapping):
        raise PrometheusError("the answer is not a JSON object, as Prometheus' API sends")
    return data


def parse_query_response(body: str | bytes) -> tuple[list[Series], list[str]]:
    """The series of an instant query's answer, and the results that were skipped."""
    data = _json(body)
    if data.get("status") == "error":
        kind, error = data.get("errorType", "error"), data.get("error", "no message")
        raise PrometheusError(f"Prometheus refused the query ({kind}): {error}")
    if data.get("status") != "success":
        raise PrometheusError(f"the answer's status is {describe(data.get('status'))}")
    result = data.get("data")
    kind = result.get("resultType") if isinstance(result, Mapping) else None
    if kind != "vector":
        raise PrometheusError(
            f"the query gives a {describe(kind)} result; the sampler needs an instant vector "
            "(one value per claim)"
        )
    assert isinstance(result, Mapping)
    items = result.get("result")
    if not isinstance(items, list):
        raise PrometheusError("the answer's data.result is not a list")
    series: list[Series] = []
    problems: list[str] = []
    for i, item in enumerate(items):
        metric = item.get("metric") if isinstance(item, Mapping) else None
        pair = item.get("value") if isinstance(item, Mapping) else None
        good = isinstance(metric, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metric.items()
        )
        if not good or not isinstance(pair, list) or len(pair) != 2:
            problems.append(f"result[{i}] has no metric labels and [time, value] pair")
            continue
        assert isinstance(metric, Mapping)
        labels = {k: v for k, v in metric.items() if k != "__name__"}
        value = _float(pair[1]) if isinstance(pair[1], str) else None
        if value is None:
            problems.append(f"result[{i}] has the value {describe(pair[1])}, not a number")
            continue
        series.append(Series(str(metric.get("__name__", "")), labels, value))
    return series, problems


# -- the text exposition format --------------------------------------------------------------


def _float(text: str) -> float | None:
    # Go's ParseFloat, as Prometheus writes values: NaN, +Inf, -Inf or a decimal number.
    if "_" in text or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _quoted(line: str, start: int) -> tuple[str, int]:
    """The string literal that opens at ``line[start]``, unescaped, and the index after it."""
    out: list[str] = []
    i = start + 1
    while i < len(line):
        char = line[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":
            escaped = _ESCAPES.get(line[i + 1 : i + 2])
            if escaped is None:
                raise ValueError(f"unknown escape at column {i + 1}")
            out.append(escaped)
            i += 2
            continue
        out.append(char)
        i += 1
    raise ValueError("a label value is not closed")


def _token(line: str, i: int, pattern: re.Pattern[str]) -> tuple[str, int, bool]:
    """A name, bare or quoted (the UTF-8 form), the index after it, and whether quoted."""
    if line[i : i + 1] == '"':
        text, end = _quoted(line, i)
        return text, end, True
    match = pattern.match(line, i)
    if match is None:
        raise ValueError(f"a name is expected at column {i + 1}")
    return match.group(), match.end(), False


def _labels(line: str, i: int, name: str) -> tuple[str, dict[str, str], int]:
    """The braces that open at ``line[i]``: the metric name (which the quoted form may put
    inside them), the labels, and the index after the closing brace."""
    labels: dict[str, str] = {}
    i += 1
    while True:
        i = len(line) - len(line[i:].lstrip())
        if line[i : i + 1] == "}":
            return name, labels, i + 1
        key, i, quoted = _token(line, i, _LABEL_NAME)
        i = len(line) - len(line[i:].lstrip())
        if quoted and not name and line[i : i + 1] in (",", "}"):
            name = key
        elif line[i : i + 1] != "=":
            raise ValueError(f"'=' is expected after the label {key!r}")
        else:
            i = len(line) - len(line[i + 1 :].lstrip())
            if line[i : i + 1] != '"':
                raise ValueError(f"the label {key!r} has no quoted value")
            labels[key], i = _quoted(line, i)
            i = len(line) - len(line[i:].lstrip())
        if line[i : i + 1] == ",":
            i += 1
        elif line[i : i + 1] != "}":
            raise ValueError(f"',' or '}}' is expected at column {i + 1}")


def _sample(line: str) -> Series:
    name, i = "", 0
    if line[0] != "{":
        name, i, _ = _token(line, 0, _NAME)
        i = len(line) - len(line[i:].lstrip())
    if line[i : i + 1] == "{":
        name, labels, i = _labels(line, i, name)
    else:
        labels = {}
    if not name:
        raise ValueError("the sample has no metric name")
    rest = line[i:].split()
    if len(rest) not in (1, 2) or (len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1])):
        raise ValueError("a value and an optional integer timestamp are expected")
    value = _float(rest[0])
    if value is None:
        raise ValueError(f"the value {describe(rest[0])} is not a number")
    return Series(name, labels, value)


def parse_exposition(text: str, wanted: Collection[str]) -> tuple[list[Series], list[str]]:
    """The samples of the ``wanted`` metrics on a text-format page, and the lines skipped.

    Comments (``# HELP``, ``# TYPE``) and other metrics are passed over unread, so that a
    kubelet's whole ``/metrics`` page costs one pass.
    """
    series: list[Series] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line[0] != "{" and not any(line.startswith(m) for m in wanted):
            continue
        try:
            sample = _sample(line)
        except ValueError as e:
            problems.append(f"line {number}: {e}")
            continue
        if sample.name in wanted:
            series.append(sample)
    return series, problems


# -- series to claims ---------------------------------------------------------------------


def _claim_values(
    series: Iterable[Series], namespace: str, what: str
) -> tuple[dict[str, int], list[str]]:
    values: dict[str, int] = {}
    problems: list[str] = []
    for s in series:
        # A query that already chose the namespace may have aggregated its label away.
        if s.labels.get(NAMESPACE_LABEL, namespace) != namespace:
            continue
        claim = s.labels.get(CLAIM_LABEL, "")
        if not claim:
            problems.append(f"a {what} series has no {CLAIM_LABEL} label: {dict(s.labels)}")
        elif math.isnan(s.value) or not 0 <= s.value <= MAX_COUNT:
            problems.append(f"claim {claim}: {what} is {s.value}, not a count")
        else:
            # Two kubelets, or two Prometheus targets, may report one shared claim.
            values[claim] = max(values.get(claim, 0), int(s.value))
    return values, problems


def claim_usage(
    used: Iterable[Series], inodes: Iterable[Series], namespace: str
) -> tuple[dict[str, VolumeUsage], list[str]]:
    """Each claim of ``namespace`` with a used-bytes series: its usage, and the problems."""
    used_bytes, problems = _claim_values(used, namespace, "used bytes")
    files, more = _claim_values(inodes, namespace, "inodes used")
    usage = {c: VolumeUsage(c, size, files.get(c, 0)) for c, size in used_bytes.items()}
    return usage, problems + more


def ksm_label(prefix: str, key: str) -> str:
    """The Prometheus label kube-state-metrics makes of a Kubernetes annotation or label
    ``key`` (``hub.jupyter.org/username`` -> ``annotation_hub_jupyter_org_username``)."""
    snake = _KSM_CAPS.sub(r"\1_\2", _KSM_INVALID.sub("_", key))
    return f"{prefix}_{snake.lower()}"


def ksm_claims(series: Iterable[Series], namespace: str, keys: Collection[str]) -> list[ClaimMeta]:
    """The claims of ``namespace`` that kube-state-metrics reports, with the annotations
    and labels among ``keys`` that it was allowed to export."""
    found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for s in series:
        claim = s.labels.get(CLAIM_LABEL, "")
        if not claim or s.labels.get(NAMESPACE_LABEL, namespace) != namespace:
            continue
        if s.name not in (KSM_ANNOTATIONS, KSM_LABELS):
            continue
        annotations, labels = found.setdefault(claim, ({}, {}))
        prefix, target = (
            ("annotation", annotations) if s.name == KSM_ANNOTATIONS else ("label", labels)
        )
        for key in keys:
            value = s.labels.get(ksm_label(prefix, key), "")
            if value:
                target[key] = value
    return [ClaimMeta(name, a, lab) for name, (a, lab) in sorted(found.items())]


__all__ = [
    "CLAIM_LABEL",
    "INODES_USED",
    "KSM_ANNOTATIONS",
    "KSM_LABELS",
    "NAMESPACE_LABEL",
    "USED_BYTES",
    "PrometheusError",
    "Series",
    "claim_usage",
    "federate_url",
    "ksm_claims",
    "ksm_label",
    "parse_exposition",
    "parse_query_response",
    "quote",
    "selector",
]
