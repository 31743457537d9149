"""Prometheus' answers as claim usage: the HTTP API's JSON, the text exposition format
(recorded pages, and pages written by the real encoder of prometheus_client), and
kube-state-metrics' claim annotations."""

from __future__ import annotations

import json
import math

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from eohub.domain.storage.claims import ClaimMeta
from eohub.domain.storage.kubelet import VolumeUsage
from eohub.domain.storage.prometheus import (
    INODES_USED,
    KSM_ANNOTATIONS,
    KSM_LABELS,
    USED_BYTES,
    PrometheusError,
    Series,
    claim_usage,
    federate_url,
    ksm_claims,
    ksm_label,
    parse_exposition,
    parse_query_response,
    selector,
)
from tests.support.kubelet_stats import BAD_DATA, FEDERATE, KUBELET_METRICS, vector_answer

NS = "hub"
WANTED = (USED_BYTES, INODES_USED)


def labels(claim: str, namespace: str = NS, **more: str) -> dict[str, str]:
    return {"namespace": namespace, "persistentvolumeclaim": claim, **more}


# -- the HTTP API's JSON --------------------------------------------------------------------


def test_a_recorded_vector_answer() -> None:
    body = vector_answer(
        [
            ({"__name__": USED_BYTES, **labels("claim-alice", job="kubelet")}, 1_200_271_872),
            (labels("claim-bob"), 204_800),
        ]
    )
    assert body.startswith('{"status":"success","data":{"resultType":"vector","result":[')
    series, problems = parse_query_response(body.encode())
    assert series == [
        Series(USED_BYTES, labels("claim-alice", job="kubelet"), 1_200_271_872.0),
        Series("", labels("claim-bob"), 204_800.0),
    ]
    assert problems == []


def test_special_values_parse_as_go_writes_them() -> None:
    body = vector_answer([(labels("a"), math.nan), (labels("b"), math.inf), (labels("c"), 1.5)])
    series, _ = parse_query_response(body)
    assert math.isnan(series[0].value)
    assert series[1].value == math.inf
    assert series[2].value == 1.5


ERRORS = [
    ("Prometheus' own error", BAD_DATA, r"refused the query \(bad_data\): invalid parameter"),
    (
        "a timeout",
        '{"status":"error","errorType":"timeout",'
        '"error":"query timed out in expression evaluation"}',
        r"\(timeout\): query timed out",
    ),
    ("an HTML page", "<html><body>Sign in</body></html>", r"not JSON \('<html><body>Sign in"),
    ("bytes that are not UTF-8", b"\xff\xfe{", "not JSON"),
    ("a JSON list", "[1, 2]", "not a JSON object"),
    ("no status", '{"data": {}}', "status is None"),
    (
        "a range query's matrix",
        '{"status":"success","data":{"resultType":"matrix","result":[]}}',
        r"gives a 'matrix' result; the sampler needs an instant vector",
    ),
    (
        "a scalar",
        '{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}',
        "'scalar' result",
    ),
    ("no result list", '{"status":"success","data":{"resultType":"vector"}}', "not a list"),
]


@pytest.mark.parametrize(("body", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_answers_give_a_clear_error(body: str | bytes, message: str) -> None:
    with pytest.raises(PrometheusError, match=message):
        parse_query_response(body)


def test_malformed_results_are_skipped_with_a_reason() -> None:
    good = {"metric": labels("a"), "value": [1.0, "5"]}
    body = json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [
                    "x",
                    {"metric": labels("b")},
                    {"metric": {"namespace": 1}, "value": [1.0, "5"]},
                    {"metric": labels("c"), "value": [1.0, 5]},
                    {"metric": labels("d"), "value": [1.0, "five"]},
                    good,
                ],
            },
        }
    )
    series, problems = parse_query_response(body)
    assert series == [Series("", labels("a"), 5.0)]
    assert problems == [
        "result[0] has no metric labels and [time, value] pair",
        "result[1] has no metric labels and [time, value] pair",
        "result[2] has no metric labels and [time, value] pair",
        "result[3] has the value 5, not a number",
        "result[4] has the value 'five', not a number",
    ]


# -- the text exposition format ---------------------------------------------------------------


def test_a_kubelets_metrics_page() -> None:
    series, problems = parse_exposition(KUBELET_METRICS, WANTED)
    assert problems == []
    usage, problems = claim_usage(
        [s for s in series if s.name == USED_BYTES],
        [s for s in series if s.name == INODES_USED],
        NS,
    )
    assert usage == {
        "claim-alice": VolumeUsage("claim-alice", 1_200_271_872, 2893),
        "claim-bob": VolumeUsage("claim-bob", 204_800, 17),
    }
    assert problems == []


def test_a_federate_page_with_timestamps_and_a_claim_on_two_nodes() -> None:
    series, problems = parse_exposition(FEDERATE, WANTED)
    assert problems == []
    assert series[0].labels["node"] == "node-a"
    assert series[0].value == 2893
    usage, _ = claim_usage(
        [s for s in series if s.name == USED_BYTES],
        [s for s in series if s.name == INODES_USED],
        NS,
    )
    assert usage == {
        "claim-alice": VolumeUsage("claim-alice", 1_200_271_872, 2893),
        "group-climate": VolumeUsage("group-climate", 34_359_738_368, 40012),
    }


LINES: list[tuple[str, str, Series | None]] = [
    ("bare", "m 1", Series("m", {}, 1.0)),
    ("a timestamp", "m 2 1765015187123", Series("m", {}, 2.0)),
    ("a negative timestamp", "m 2 -1", Series("m", {}, 2.0)),
    ("empty braces", "m{} 3", Series("m", {}, 3.0)),
    ("a trailing comma", 'm{a="1",} 4', Series("m", {"a": "1"}, 4.0)),
    ("spaces around", 'm { a = "1" , b="2" } 5', Series("m", {"a": "1", "b": "2"}, 5.0)),
    (
        "escaped quote, backslash and newline",
        r'm{user="o\"brien\\x\ny"} 6',
        Series("m", {"user": 'o"brien\\x\ny'}, 6.0),
    ),
    (
        "braces and commas inside a value",
        'm{q="{a=\\"b\\",c}"} 7',
        Series("m", {"q": '{a="b",c}'}, 7.0),
    ),
    ("NaN", "m NaN", Series("m", {}, math.nan)),
    ("+Inf", "m +Inf", Series("m", {}, math.inf)),
    ("-Inf", "m -Inf", Series("m", {}, -math.inf)),
    ("exponent", "m 1.5e+03", Series("m", {}, 1500.0)),
    ("UTF-8 name inside the braces", '{"m", "a.b"="c"} 8', Series("m", {"a.b": "c"}, 8.0)),
    ("unclosed value", 'm{a="1} 1', None),
    ("unknown escape", r'm{a="\t"} 1', None),
    ("no equals", "m{a} 1", None),
    ("unquoted value", "m{a=1} 1", None),
    ("no value", 'm{a="1"}', None),
    ("a word for a value", "m one", None),
    ("underscores in the value", "m 1_000", None),
    ("a float timestamp", "m 1 2.5", None),
    ("three fields", "m 1 2 3", None),
    ("no name at all", '{a="1"} 1', None),
    ("missing comma", 'm{a="1" b="2"} 1', None),
]


@pytest.mark.parametrize(("line", "expected"), [c[1:] for c in LINES], ids=[c[0] for c in LINES])
def test_exposition_lines(line: str, expected: Series | None) -> None:
    series, problems = parse_exposition(f"# HELP m a metric\n# TYPE m gauge\n{line}\n", {"m"})
    if expected is None:
        assert series == []
        (problem,) = problems
        assert problem.startswith("line 3: ")
        return
    assert problems == []
    (found,) = series
    assert (found.name, dict(found.labels)) == (expected.name, dict(expected.labels))
    assert found.value == expected.value or (
        math.isnan(found.value) and math.isnan(expected.value)
    )


def test_other_metrics_and_comments_are_not_read() -> None:
    page = "# a comment\n\nother_metric{broken 1\nkubelet_volume_stats_used_bytes_total 1\nm 1\n"
    assert parse_exposition(page, {"m"}) == ([Series("m", {}, 1.0)], [])


@pytest.mark.parametrize(
    "user", ['o"brien', "back\\slash", "new\nline", "Zoë {x}", "a,b=c", "!alice", "名前"]
)
def test_pages_written_by_the_real_encoder(user: str) -> None:
    # kube-state-metrics exports the claim's annotation as a label value; whatever the
    # user name, the page the real encoder writes parses back to it.
    registry = CollectorRegistry()
    gauge = Gauge(
        KSM_ANNOTATIONS,
        "Kubernetes annotations converted to Prometheus labels.",
        ["namespace", "persistentvolumeclaim", "annotation_hub_jupyter_org_username"],
        registry=registry,
    )
    gauge.labels(NS, "claim-x", user).set(1)
    used = Gauge(
        USED_BYTES,
        "Number of used bytes in the volume",
        ["namespace", "persistentvolumeclaim"],
        registry=registry,
    )
    used.labels(NS, "claim-x").set(3.2e9)
    page = generate_latest(registry).decode()
    series, problems = parse_exposition(page, {KSM_ANNOTATIONS, USED_BYTES})
    assert problems == []
    claims = ksm_claims(series, NS, ["hub.jupyter.org/username"])
    assert claims == [ClaimMeta("claim-x", {"hub.jupyter.org/username": user}, {})]
    usage, _ = claim_usage([s for s in series if s.name == USED_BYTES], [], NS)
    assert usage == {"claim-x": VolumeUsage("claim-x", 3_200_000_000, 0)}


# -- series to claims -------------------------------------------------------------------------


USAGE_CASES: list[tuple[str, list[Series], list[Series], dict[str, VolumeUsage], list[str]]] = [
    (
        "bytes and files",
        [Series(USED_BYTES, labels("a"), 10.0)],
        [Series(INODES_USED, labels("a"), 3.0)],
        {"a": VolumeUsage("a", 10, 3)},
        [],
    ),
    (
        "no inode series: no files counted",
        [Series(USED_BYTES, labels("a"), 10.0)],
        [],
        {"a": VolumeUsage("a", 10, 0)},
        [],
    ),
    (
        "inodes alone are no usage",
        [],
        [Series(INODES_USED, labels("a"), 3.0)],
        {},
        [],
    ),
    (
        "another namespace is not ours; an aggregated-away namespace is",
        [
            Series(USED_BYTES, labels("a", "other"), 10.0),
            Series("", {"persistentvolumeclaim": "b"}, 7.0),
        ],
        [],
        {"b": VolumeUsage("b", 7, 0)},
        [],
    ),
    (
        "two reports of one claim: the larger, fractions dropped",
        [
            Series(USED_BYTES, labels("a", instance="x"), 10.9),
            Series(USED_BYTES, labels("a", instance="y"), 9.0),
        ],
        [],
        {"a": VolumeUsage("a", 10, 0)},
        [],
    ),
    (
        "NaN, negative and no claim label",
        [
            Series(USED_BYTES, labels("a"), math.nan),
            Series(USED_BYTES, labels("b"), -1.0),
            Series(USED_BYTES, {"namespace": NS}, 1.0),
            Series(USED_BYTES, labels("c"), math.inf),
        ],
        [],
        {},
        [
            "claim a: used bytes is nan, not a count",
            "claim b: used bytes is -1.0, not a count",
            "a used bytes series has no persistentvolumeclaim label: {'namespace': 'hub'}",
            "claim c: used bytes is inf, not a count",
        ],
    ),
]


@pytest.mark.parametrize(
    ("used", "inodes", "usage", "problems"),
    [c[1:] for c in USAGE_CASES],
    ids=[c[0] for c in USAGE_CASES],
)
def test_series_to_claim_usage(
    used: list[Series], inodes: list[Series], usage: dict[str, VolumeUsage], problems: list[str]
) -> None:
    assert claim_usage(used, inodes, NS) == (usage, problems)


@pytest.mark.parametrize(
    ("prefix", "key", "label"),
    [
        ("annotation", "hub.jupyter.org/username", "annotation_hub_jupyter_org_username"),
        ("annotation", "eohub.io/group", "annotation_eohub_io_group"),
        ("label", "app.kubernetes.io/component", "label_app_kubernetes_io_component"),
        ("label", "myGroup", "label_my_group"),  # kube-state-metrics' snake case
    ],
)
def test_kube_state_metrics_label_names(prefix: str, key: str, label: str) -> None:
    assert ksm_label(prefix, key) == label


def test_claims_from_kube_state_metrics() -> None:
    keys = ["hub.jupyter.org/username", "eohub.io/group"]
    series = [
        Series(
            KSM_ANNOTATIONS,
            labels("claim-alice", annotation_hub_jupyter_org_username="alice@example.org"),
            1,
        ),
        Series(
            KSM_LABELS,
            labels("claim-alice", label_hub_jupyter_org_username="alice-40example-2eorg"),
            1,
        ),
        Series(KSM_ANNOTATIONS, labels("group-climate", annotation_eohub_io_group="climate"), 1),
        Series(KSM_LABELS, labels("hub-db-dir", label_app="jupyterhub"), 1),
        Series(KSM_ANNOTATIONS, labels("theirs", "other", annotation_eohub_io_group="x"), 1),
        Series("kube_persistentvolumeclaim_info", labels("info-only"), 1),
        Series(KSM_ANNOTATIONS, {"namespace": NS}, 1),
    ]
    assert ksm_claims(series, NS, keys) == [
        ClaimMeta(
            "claim-alice",
            {"hub.jupyter.org/username": "alice@example.org"},
            {"hub.jupyter.org/username": "alice-40example-2eorg"},
        ),
        ClaimMeta("group-climate", {"eohub.io/group": "climate"}, {}),
        ClaimMeta("hub-db-dir", {}, {}),
    ]


# -- queries and URLs -------------------------------------------------------------------------


def test_selectors_quote_the_namespace() -> None:
    assert selector(USED_BYTES, "hub") == 'kubelet_volume_stats_used_bytes{namespace="hub"}'
    assert selector("m", 'a"b\\c') == 'm{namespace="a\\"b\\\\c"}'


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://prometheus:9090/federate",
            "http://prometheus:9090/federate?match%5B%5D=m%7Bnamespace%3D%22hub%22%7D",
        ),
        (
            "https://p.example.org/prom/federate/?x=1",
            "https://p.example.org/prom/federate/?x=1&match%5B%5D=m%7Bnamespace%3D%22hub%22%7D",
        ),
        ("http://p/federate?match[]=up", "http://p/federate?match[]=up"),  # the admin's own
        ("http://10.0.0.11:10255/metrics", "http://10.0.0.11:10255/metrics"),
    ],
)
def test_federate_urls_get_the_selectors(url: str, expected: str) -> None:
    assert federate_url(url, ["m"], "hub") == expected
