"""The usage pages' Storage sections on a real store: the chart, the latest figures
summed over their sources (and listing them), samples older than the max age no longer
counted (as the quota check no longer counts them), the warnings of groups nearly full
or over their quota, and the empty state.

The group climate (display name Climate, PI carol) has a storage quota of 10 GiB; the
clock travels through its grace. The store counts samples for 7 days (the default
``storage_sample_max_age``). Pages are rendered by the service's own templates.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from eohub.accounting.scopes import ACCESS, Caller, Kind
from eohub.accounting.service.pages import storage_view, views
from eohub.accounting.service.pages.handlers import HALF, WIDE, render
from eohub.accounting.service.pages.words import files_text, size_text
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.ledger import GIB, Resources
from eohub.domain.accounting.periods import PeriodKind
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.accounting.storage_quota import StoragePolicy, StorageState
from tests.accounting.service.pages.pages_support import EVIL, NOW, month_range, pages_store
from tests.support.accounting import Clock

ALICE = Caller("alice", Kind.USER, frozenset({ACCESS}), groups=frozenset({"climate"}))
CAROL = Caller("carol", Kind.USER, frozenset({ACCESS}), frozenset({"climate"}))
LINKS = {"prefix": "/services/eohub-accounting/", "hub_prefix": "/hub/"}
POLICY = StoragePolicy(timedelta(days=3), 0.9)
DAY = timedelta(days=1)
QUOTA = {"": Limits(core_hours=Fraction(100), storage_bytes=10 * GIB)}


@pytest.fixture
def store(tmp_path: Path) -> AccountingStore:
    store = pages_store(tmp_path)
    store.put_group("climate", quotas=QUOTA)
    return store


def span(kind: PeriodKind = PeriodKind.MONTH) -> storage_view.Span:
    rng = month_range() if kind is PeriodKind.MONTH else views.recent_range(kind, NOW, 31)
    return storage_view.Span(rng.start, rng.end, kind)


HOME, SCRATCH = "/export/home", "/export/scratch"


def measure(
    store: AccountingStore, *samples: tuple[str, str, float, int, timedelta], source: str = ""
) -> None:
    """Samples of (user, group, GiB, files, how long before now), at ``source``."""
    store.add_storage_samples(
        StorageSample(user, group, int(gib * GIB), NOW - ago, files, source=source)
        for user, group, gib, files, ago in samples
    )


def usage_html(store: AccountingStore, storage: storage_view.StorageSection) -> str:
    page = views.my_usage(store, "alice", ALICE.groups, month_range(), None, WIDE)
    return render(
        "usage.html",
        caller=ALICE,
        **LINKS,
        page=page,
        period="month",
        enforcement=[],
        flagged=set(),
        warned={},
        storage=storage,
    )


def groups_html(store: AccountingStore, storage: storage_view.StorageSection) -> str:
    (group,) = store.groups({"climate"})
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    return render(
        "groups.html",
        caller=CAROL,
        **LINKS,
        reports=[report],
        reports_json={"climate": {"storage": storage.to_json()}},
        period="month",
        focus="",
        enforcement={"climate": []},
        flagged=set(),
        warned={},
        servers={"climate": []},
        may_stop={"climate": False},
        hub_known=True,
        storage={"climate": storage},
    )


def alerts(html: str) -> list[tuple[str, str]]:
    """The page's storage notices (its budget notices are another test's)."""
    found = re.findall(r'<div class="alert alert-(\w+)" role="alert">([^<]*)</div>', html)
    return [(level, text) for level, text in found if "storage quota" in text]


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1,023 B"),
        (1024, "1.0 KiB"),
        (512 * 2**20 + 2**19, "512.5 MiB"),
        (12 * GIB, "12.0 GiB"),
        (1536 * GIB, "1.5 TiB"),
    ],
)
def test_sizes_read_as_a_disks(size: int, text: str) -> None:
    assert size_text(size) == text


def test_files_not_counted_say_so() -> None:
    assert files_text(0) == "not counted"
    assert files_text(1234567) == "1,234,567"


def test_a_user_sees_their_storage_per_group_and_without_one(store: AccountingStore) -> None:
    measure(
        store,
        ("alice", "climate", 2, 100, 40 * DAY),
        ("alice", "climate", 3, 150, 2 * DAY),
        ("alice", "", 0.5, 0, 6 * DAY),
        ("bob", "climate", 4, 40, DAY),
    )
    section = storage_view.user_storage(store, "alice", ALICE.groups, span(), POLICY, WIDE)
    assert [(f.label, f.size, f.files, f.group_size) for f in section.figures] == [
        ("Climate", "3.0 GiB", "150", "7.0 GiB of 10 GiB"),
        ("no group", "512.0 MiB", "not counted", "\u2013"),
    ]
    assert [name for name, _, _ in section.lines] == ["Total", "Climate", "no group"]
    climate = section.lines[1][1]
    assert climate[0] == 0  # the range starts before alice's first sample
    assert climate[-1] == 3 * GIB
    assert 2 * GIB in climate
    assert section.points[-1] == NOW
    assert section.notices == ()  # 7 of 10 GiB: under 90%
    html = usage_html(store, section)
    assert 'id="storage-chart"' in html
    assert "bob" not in html.split('id="storage"')[1].split("</section>")[0]
    assert alerts(html) == []
    (data,) = re.findall(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    storage = json.loads(data)["storage"]
    assert [s["name"] for s in storage["series"]] == ["Total", "Climate", "no group"]
    assert storage["series"][0]["bytes"][-1] == int(3.5 * GIB)


def test_members_and_pis_are_warned_when_the_group_is_nearly_full(
    store: AccountingStore,
) -> None:
    measure(store, ("alice", "climate", 5, 1, DAY), ("bob", "climate", 4.5, 1, DAY))
    near = "Group climate stores 9.5 GiB, 95% of its storage quota of 10 GiB."
    section = storage_view.user_storage(store, "alice", ALICE.groups, span(), POLICY, WIDE)
    assert alerts(usage_html(store, section)) == [("warning", near)]
    (group,) = store.groups({"climate"})
    report = storage_view.group_storage(store, group, span(), POLICY, HALF)
    assert report.verdict is not None
    assert report.verdict.state is StorageState.NEAR
    html = groups_html(store, report)
    assert ("warning", near) in alerts(html)
    assert "bg-warning" in html.split("storage-total")[1]


def test_the_grace_then_the_refusal_show_on_both_pages(tmp_path: Path) -> None:
    store = pages_store(tmp_path)
    clock = store.clock
    assert isinstance(clock, Clock)
    store.put_group("climate", quotas=QUOTA)
    measure(store, ("alice", "climate", 8, 1, DAY), ("bob", "climate", 4, 1, 2 * DAY))
    (group,) = store.groups({"climate"})
    over = NOW - DAY  # the newest sample that put the group over
    grace = (
        f"Group climate stores 12.0 GiB, over its storage quota of 10 GiB since "
        f"{over:%Y-%m-%d %H:%M} UTC. New servers charged to it will be refused from "
        f"{over + 3 * DAY:%Y-%m-%d %H:%M} UTC unless space is freed."
    )
    section = storage_view.user_storage(store, "alice", ALICE.groups, span(), POLICY, WIDE)
    assert alerts(usage_html(store, section)) == [("warning", grace)]
    clock.advance(days=3)
    refused = (
        f"Group climate stores 12.0 GiB, over its storage quota of 10 GiB since "
        f"{over:%Y-%m-%d %H:%M} UTC (grace of 3 days ended). Free some space to start "
        "servers charged to it; running servers are not stopped."
    )
    report = storage_view.group_storage(store, group, span(), POLICY, HALF)
    assert ("danger", refused) in alerts(groups_html(store, report))
    section = storage_view.user_storage(store, "alice", ALICE.groups, span(), POLICY, WIDE)
    assert alerts(usage_html(store, section)) == [("danger", refused)]
    # The quota check refuses with the same words.
    decision = store.check_quota("alice", "climate", Resources(1000, 0, 0))
    assert not decision.allowed
    assert decision.reason == refused


def test_a_group_page_charts_the_total_its_largest_members_and_its_quota(
    store: AccountingStore,
) -> None:
    members = [f"user{i}" for i in range(7)] + [EVIL]
    measure(store, *((u, "climate", 0.5 + i / 10, i, DAY) for i, u in enumerate(members)))
    (group,) = store.groups({"climate"})
    section = storage_view.group_storage(store, group, span(PeriodKind.DAY), POLICY, HALF)
    assert [f.name for f in section.figures] == [EVIL, *reversed(members[:-1])]
    assert sum(f.share or 0 for f in section.figures) == pytest.approx(100)
    names = [name for name, _, _ in section.lines]
    assert names == ["Total", EVIL, "user6", "user5", "user4", "user3"]
    assert section.lines[0][1][-1] == section.total
    assert section.chart is not None
    assert [line.name for line in section.chart.lines] == [*names, "Quota"]
    html = groups_html(store, section)
    assert EVIL not in html
    assert html.count('<tr data-user="') == len(members)
    assert "storage-members" in html
    assert "of 10 GiB" in html


def storage_part(html: str, start: str, end: str) -> str:
    """The part of the page from ``start`` to ``end``: its Storage section."""
    return html.split(start, 1)[1].split(end, 1)[0]


def my_storage(html: str) -> str:
    return storage_part(html, 'id="storage"', "</section>")


def group_part(html: str) -> str:
    return storage_part(html, 'class="storage mt-4"', "Quotas")


def quota_check_bytes(store: AccountingStore, user: str) -> int:
    """What climate stores as the quota check counts it."""
    decision = store.check_quota(user, "climate", Resources(1000, 0, 0))
    return int(decision.standing["group"]["storage"]["bytes"])


def test_a_users_space_is_the_sum_of_their_sources_each_listed(store: AccountingStore) -> None:
    """alice is measured at her home and scratch roots: one does not overwrite the
    other, and a root not measured since keeps its last figure."""
    measure(
        store,
        ("alice", "climate", 2, 100, 2 * DAY),
        ("alice", "climate", 2.5, 120, DAY),
        source=HOME,
    )
    measure(store, ("alice", "climate", 1, 50, 2 * DAY), source=SCRATCH)
    measure(store, ("bob", "climate", 4, 40, DAY), source="pvc:hub/claim-bob")
    section = storage_view.user_storage(store, "alice", ALICE.groups, span(), POLICY, WIDE)
    (climate,) = section.figures
    assert (climate.size, climate.files, climate.group_size) == (
        "3.5 GiB",
        "170",
        "7.5 GiB of 10 GiB",
    )
    assert climate.measured_at == NOW - DAY
    assert [(s.label, s.size) for s in climate.named_sources] == [
        (HOME, "2.5 GiB"),
        (SCRATCH, "1.0 GiB"),
    ]
    assert [(name, values[-1]) for name, values, _ in section.lines] == [
        ("Climate", int(3.5 * GIB))
    ]
    mine = my_storage(usage_html(store, section))
    assert f'<li data-source="{HOME}"><code>{HOME}</code> 2.5 GiB</li>' in mine
    assert f'<li data-source="{SCRATCH}"><code>{SCRATCH}</code> 1.0 GiB</li>' in mine
    (group,) = store.groups({"climate"})
    report = storage_view.group_storage(store, group, span(PeriodKind.DAY), POLICY, HALF)
    assert [(f.name, f.size, [s.name for s in f.named_sources]) for f in report.figures] == [
        ("bob", "4.0 GiB", ["pvc:hub/claim-bob"]),
        ("alice", "3.5 GiB", [HOME, SCRATCH]),
    ]
    assert report.total == report.lines[0][1][-1] == int(7.5 * GIB)
    assert dict((name, values[-1]) for name, values, _ in report.lines)["alice"] == int(3.5 * GIB)
    # The page counts what the quota check counts.
    assert quota_check_bytes(store, "alice") == report.total
    html = groups_html(store, report)
    assert html.count('<li data-source="') == 3
    assert "<code>pvc:hub/claim-bob</code> 4.0 GiB" in html


def test_a_sample_older_than_the_max_age_no_longer_counts(store: AccountingStore) -> None:
    """alice moved from climate to ocean eight days ago: her climate space (6 GiB, which
    would put climate over its quota) stops counting after 7 days, on both pages as in
    the quota check; her history in climate stays on the chart."""
    measure(
        store,
        ("alice", "climate", 6, 60, 8 * DAY),
        ("alice", "ocean", 1, 10, DAY),
        ("bob", "climate", 4.5, 45, DAY),
        ("dave", "climate", 1, 1, 9 * DAY),
    )
    section = storage_view.user_storage(
        store, "alice", ALICE.groups, span(PeriodKind.DAY), POLICY, WIDE
    )
    assert [(f.label, f.size, f.group_size) for f in section.figures] == [
        ("ocean", "1.0 GiB", "1.0 GiB")
    ]
    lines = {name: values for name, values, _ in section.lines}
    assert list(lines) == ["Total", "ocean", "Climate"]
    assert max(lines["Climate"]) == 6 * GIB
    assert lines["Climate"][-2:] == [0, 0]  # today's midnight and now: 7.5 and 8 days old
    assert lines["Total"][-1] == GIB
    assert section.notices == ()
    html = usage_html(store, section)
    assert alerts(html) == []
    assert "A measurement older than 7 days no longer counts." in my_storage(html)
    (group,) = store.groups({"climate"})
    report = storage_view.group_storage(store, group, span(PeriodKind.DAY), POLICY, HALF)
    assert [f.name for f in report.figures] == ["bob"]
    assert report.total == quota_check_bytes(store, "bob") == int(4.5 * GIB)
    assert report.verdict is not None
    assert report.verdict.state is StorageState.OK
    assert max(report.lines[0][1]) == 7 * GIB  # alice's and dave's, while they counted
    assert 'data-user="alice"' not in groups_html(store, report)
    # Nothing of dave's counts now: his page says so, and still charts his history.
    gone = storage_view.user_storage(
        store, "dave", {"climate"}, span(PeriodKind.DAY), POLICY, WIDE
    )
    assert gone.figures == ()
    assert not gone.empty
    assert (
        "None of your storage counts now. A measurement older than 7 days no longer counts."
        in usage_html(store, gone)
    )


def test_the_group_page_names_the_group_by_its_display_name(store: AccountingStore) -> None:
    measure(store, ("alice", "climate", 1, 1, DAY))
    (group,) = store.groups({"climate"})
    report = storage_view.group_storage(store, group, span(), POLICY, HALF)
    part = group_part(groups_html(store, report))
    assert "Storage of Climate over time" in part
    assert (
        "Each member&#39;s storage in Climate" in part
        or "Each member's storage in Climate" in part
    )
    assert "climate" not in re.sub(r'(id|data-[a-z]+)="[^"]*"', "", part)


def test_nothing_measured_shows_the_empty_state(store: AccountingStore) -> None:
    section = storage_view.user_storage(store, "alice", ALICE.groups, span(), POLICY, WIDE)
    assert section.empty
    assert section.chart is None
    html = usage_html(store, section)
    assert "No storage samples yet: see the storage how-tos." in html
    (group,) = store.groups({"climate"})
    report = storage_view.group_storage(store, group, span(), POLICY, HALF)
    assert "No storage samples yet: see the storage how-tos." in groups_html(store, report)


def test_a_group_without_a_storage_quota_is_never_warned(store: AccountingStore) -> None:
    store.put_group("climate", quotas={"": Limits(core_hours=Fraction(100))})
    measure(store, ("alice", "climate", 500, 1, DAY))
    (group,) = store.groups({"climate"})
    report = storage_view.group_storage(store, group, span(), POLICY, HALF)
    assert report.notices == ()
    assert report.limit is None
    assert "500.0 GiB, no storage quota" in groups_html(store, report)
