"""Reading ``xfs_quota`` project reports and the project mapping files.

The reports are shaped as xfsprogs prints them (``report -p -b [-i] -n -N``: numeric ids,
no header; blocks in KiB, then the warning count and the grace time in brackets), as
seen in xfstests' expected outputs. Real XFS is not available where these tests run.
"""

from __future__ import annotations

import pytest

from eohub.domain.storage.xfs_report import (
    ProjectUsage,
    XfsReportError,
    parse_projects,
    parse_projid,
    parse_report,
    usage_by_path,
)

BLOCKS_ONLY = """\
#0                   3          0          0     00 [--------]
#42                  8         20         20     00 [--------]
"""

BLOCKS_AND_INODES = """\
#0          2048        0        0   00 [--------]       5        0        0   00 [--------]
#1001    1048576        0  2097152   00 [--------]    1234        0        0   00 [--------]
#1002    2200000  2000000  3000000   01 [6 days]        17        0        0   00 [--------]
#1003    3000000  2000000  3000000   02 [-none-]         0        0        0   00 [--------]

"""

# Without -n the project's name from /etc/projid stands first.
NAMED = """\
alice             4096          0          0     00 [--------]
123456-project      12          0          0     00 [--------]
"""

REPORT_CASES = [
    ("blocks only", BLOCKS_ONLY, [("#0", 3 * 1024, None), ("#42", 8 * 1024, None)]),
    (
        "blocks and inodes, over the soft limit, past the grace",
        BLOCKS_AND_INODES,
        [
            ("#0", 2048 * 1024, 5),
            ("#1001", 1048576 * 1024, 1234),
            ("#1002", 2200000 * 1024, 17),
            ("#1003", 3000000 * 1024, 0),
        ],
    ),
    ("names", NAMED, [("alice", 4096 * 1024, None), ("123456-project", 12 * 1024, None)]),
    ("tabs between columns", "#7\t1\t0\t0\t00 [--------]\n", [("#7", 1024, None)]),
    ("empty: no projects yet", "", []),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[1:] for case in REPORT_CASES],
    ids=[case[0] for case in REPORT_CASES],
)
def test_parse_report(text: str, expected: list[tuple[str, int, int | None]]) -> None:
    assert parse_report(text) == [ProjectUsage(*row) for row in expected]


@pytest.mark.parametrize(
    "text",
    [
        # The header a report without -N prints: never read as numbers.
        "Project quota on /export (/dev/sdb1)\n#1 8 0 0 00 [--------]\n",
        "#1 8 0 0 00\n",  # no grace column
        "#1 eight 0 0 00 [--------]\n",
        "#1 -8 0 0 00 [--------]\n",
        "#1 8K 0 0 00 [--------]\n",  # -h (human-readable) numbers
        "xfs_quota: cannot find mount point for path\n",
    ],
)
def test_a_report_this_parser_does_not_know_is_an_error(text: str) -> None:
    with pytest.raises(XfsReportError, match="line"):
        parse_report(text)


PROJECTS = """\
# project id : directory
1001:/export/home/alice
1002:/export/home/bob/
1003:/export/shared/a
1003:/export/shared/b

"""
PROJID = "alice:1001\nbob:1002\n# comment\n123456-project:1004\n"


def test_mapping_files() -> None:
    assert parse_projects(PROJECTS) == {
        1001: ["/export/home/alice"],
        1002: ["/export/home/bob"],
        1003: ["/export/shared/a", "/export/shared/b"],
    }
    assert parse_projid(PROJID) == {"alice": 1001, "bob": 1002, "123456-project": 1004}


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_projects, "alice:/export/home/alice\n", "not a numeric project id"),
        (parse_projects, "1001\n", "is not 'a:b'"),
        (parse_projid, "alice:x\n", "not a numeric project id"),
        (parse_projid, ":1001\n", "is not 'a:b'"),
    ],
)
def test_bad_mapping_files(parse: object, text: str, message: str) -> None:
    with pytest.raises(XfsReportError, match=message):
        parse(text)  # type: ignore[operator]


def test_usage_by_path_keeps_single_directory_projects() -> None:
    report = parse_report(BLOCKS_AND_INODES) + parse_report("alice 1 0 0 00 [--------]\n")
    found = usage_by_path(report, parse_projects(PROJECTS), parse_projid(PROJID))
    # #0 is everything outside a project; #1003 has two folders it cannot tell apart;
    # "alice" by name is project 1001 again (the later line wins).
    assert found == {
        "/export/home/alice": ProjectUsage("alice", 1024, None),
        "/export/home/bob": ProjectUsage("#1002", 2200000 * 1024, 17),
    }
