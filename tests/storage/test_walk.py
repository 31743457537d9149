"""The walk against ``du`` on real trees the tests make.

Every tree is compared with GNU ``du -s -B1 -x`` (bytes) and ``du -s -x --inodes``
(entries) on the same folder, which must agree exactly: the walk's semantics are
``du``'s (allocated blocks, symbolic links never followed, hard links once per folder
walked, one filesystem).

Unreadable folders: when the tests run as root, ``chmod 000`` denies root nothing, so
those walks (and their ``du``) run as the user ``nobody`` (uid 65534): the walk in a
forked child that drops to that uid, ``du`` through ``setpriv``. Either way the denial
is real: the test checks that the walk met it.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from eohub.storage.walk import Limits, TooManyEntries, Usage, WalkStopped, walk, walk_in_thread

T = TypeVar("T")
NOBODY = 65534
ROOT = os.geteuid() == 0


def du(path: Path | str, *, inodes: bool = False, unprivileged: bool = False) -> int:
    """``du -s -x`` of ``path``: bytes (``-B1``) or entries (``--inodes``)."""
    argv = ["du", "-s", "-x", "--inodes" if inodes else "-B1", str(path)]
    if unprivileged and ROOT:
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
    # du exits 1 after "cannot read directory", and still prints the total.
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return int(done.stdout.split()[0])


def assert_like_du(path: Path | str, usage: Usage, *, unprivileged: bool = False) -> None:
    assert (usage.bytes, usage.entries) == (
        du(path, unprivileged=unprivileged),
        du(path, inodes=True, unprivileged=unprivileged),
    )


def unprivileged(work: Callable[[], T]) -> T:
    """``work()`` as a user that file permissions apply to (see the module doc)."""
    if not ROOT:
        return work()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, work, send the pickled result back
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            data = pickle.dumps(("ok", work()))
        except BaseException as e:
            data = pickle.dumps(("error", repr(e)))
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        data = source.read()
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)  # noqa: S301 - our own child's bytes
    if kind != "ok":
        raise AssertionError(f"the unprivileged walk failed: {value}")
    return value  # type: ignore[no-any-return]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder ``nobody`` can reach (pytest's tmp_path is under a 0700 folder of root)."""
    path = Path(tempfile.mkdtemp(prefix="eohub-walk-"))
    path.chmod(0o755)
    yield path
    for folder, dirs, _ in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o755)  # noqa: S103 - to remove them
    shutil.rmtree(path)


def write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def make_users(base: Path) -> tuple[Path, Path, Path]:
    """alice's and bob's trees, and a big file outside both."""
    outside = write(base / "outside" / "big.bin", 5 * 1024 * 1024)
    alice, bob = base / "home" / "alice", base / "home" / "bob"
    write(alice / "notes.txt", 3000)
    data = write(alice / "deep" / "a" / "b" / "c" / "data.bin", 100_000)
    os.link(data, alice / "deep" / "a" / "copy.bin")  # a second name, same user
    (alice / "empty").mkdir()
    with (alice / "sparse.img").open("wb") as f:  # 1 GiB long, 4 KiB allocated
        f.write(b"x" * 4096)
        f.truncate(1024**3)
    (alice / "link-out").symlink_to(outside)  # a link out of the tree: never followed
    (alice / "link-dir").symlink_to(outside.parent)
    (alice / "link-in").symlink_to("notes.txt")
    os.mkfifo(alice / "pipe")
    write(bob / "results.csv", 20_000)
    os.link(data, bob / "shared.bin")  # the same file in both users' trees
    return alice, bob, outside


def test_the_walk_counts_as_du_does(tmp_path: Path) -> None:
    alice, bob, _ = make_users(tmp_path)
    for home in (alice, bob):
        assert_like_du(home, walk(str(home)))
    usage = walk(str(alice))
    # Sparse: 4 KiB of the 1 GiB; the big file behind the link is not counted.
    assert usage.bytes < 200 * 1024
    assert usage.entries == 13  # alice, 6 files and links, a pipe, 4 folders, 1 hard link once
    assert usage.unreadable == usage.vanished == 0
    # A hard link across users counts in each tree walked, as `du -s` of each does: bob
    # pays for the file too. (One `du -s alice bob` would count it under alice only.)
    shared = (alice / "deep/a/b/c/data.bin").stat().st_blocks * 512
    assert walk(str(bob)).bytes >= shared + (bob / "results.csv").stat().st_blocks * 512


def test_links_count_as_links(tmp_path: Path) -> None:
    alice, _, outside = make_users(tmp_path)
    before = walk(str(alice))
    link_blocks = os.lstat(alice / "link-out").st_blocks * 512  # 0 when the target fits
    (alice / "link-out").unlink()
    after = walk(str(alice))
    assert before.entries - after.entries == 1
    assert before.bytes - after.bytes == link_blocks < 64 * 1024
    assert outside.stat().st_blocks * 512 >= 5 * 1024 * 1024  # what following would add


def test_a_root_that_is_a_link_or_a_file_is_refused(tmp_path: Path) -> None:
    alice, _, outside = make_users(tmp_path)
    (tmp_path / "alias").symlink_to(alice)
    with pytest.raises(NotADirectoryError):
        walk(str(tmp_path / "alias"))
    with pytest.raises(NotADirectoryError):
        walk(str(outside))
    with pytest.raises(FileNotFoundError):
        walk(str(tmp_path / "nobody-here"))


def test_other_filesystems_below_are_left_out() -> None:
    # /dev is devtmpfs with /dev/shm (tmpfs) and /dev/pts (devpts) mounted below it on
    # every Linux machine: a real tree with mount points, which the tests cannot mount.
    devices = {os.lstat(e.path).st_dev for e in os.scandir("/dev")}
    assert len(devices) > 1, "no mount point under /dev to cross"
    assert_like_du("/dev", walk("/dev"))


def test_unreadable_folders_are_counted_and_skipped(shared_tmp: Path) -> None:
    home = shared_tmp / "carol"
    write(home / "visible.bin", 50_000)
    write(home / "locked" / "secret.bin", 80_000)
    write(home / "listable" / "unstatable.bin", 30_000)
    (home / "locked").chmod(0o000)  # neither read nor search: not listed
    (home / "listable").chmod(0o444)  # read, no search: names listed, entries unreadable
    for path in (shared_tmp, home):
        path.chmod(0o755)

    usage = unprivileged(lambda: walk(str(home)))
    assert usage.unreadable == 2, usage
    assert usage.first_problem in (str(home / "locked"), str(home / "listable/unstatable.bin"))
    # The folders themselves count (their blocks are visible from outside), as in du.
    assert_like_du(home, usage, unprivileged=True)
    assert usage.entries == 4  # carol, visible.bin, locked, listable: not what they hold


def test_entries_that_vanish_while_listed_are_counted_and_skipped(tmp_path: Path) -> None:
    home = tmp_path / "dave"
    folder = home / "scratch"
    for i in range(50):
        write(folder / f"f{i:02d}", 4096)

    def delete_all() -> None:
        # Called after "scratch" and its first entry are counted: the listing holds the
        # other 49 names, whose files are now gone.
        for entry in os.scandir(folder):
            os.unlink(entry.path)

    usage = walk(str(home), Limits(pause_every=3, pause=once(delete_all)))
    assert (usage.entries, usage.vanished, usage.unreadable) == (3, 49, 0)
    assert usage.first_problem.startswith(str(folder))


def test_a_folder_that_vanishes_before_it_is_read(tmp_path: Path) -> None:
    home = tmp_path / "erin"
    write(home / "gone" / "a.bin", 10_000)
    usage = walk(
        str(home), Limits(pause_every=2, pause=once(lambda: shutil.rmtree(home / "gone")))
    )
    assert (usage.entries, usage.vanished) == (2, 1)
    assert usage.first_problem == str(home / "gone")


def once(action: Callable[[], None]) -> Callable[[], None]:
    done = threading.Event()

    def run() -> None:
        if not done.is_set():
            done.set()
            action()

    return run


def test_the_walk_stops_past_its_bound(tmp_path: Path) -> None:
    for i in range(10):
        write(tmp_path / "t" / f"{i}", 10)
    assert walk(str(tmp_path / "t"), Limits(max_entries=11)).entries == 11
    with pytest.raises(TooManyEntries) as caught:
        walk(str(tmp_path / "t"), Limits(max_entries=10))
    assert caught.value.limit == 10


def test_the_walk_stops_when_asked(tmp_path: Path) -> None:
    for i in range(10):
        write(tmp_path / "t" / f"{i}", 10)
    stop = threading.Event()
    stop.set()
    with pytest.raises(WalkStopped):
        walk(str(tmp_path / "t"), Limits(pause_every=5, stop=stop))


def test_the_event_loop_runs_while_a_walk_does(tmp_path: Path) -> None:
    for i in range(2000):
        (tmp_path / f"d{i % 20}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 20}" / f"{i}").touch()
    # 2000 entries with a 20 ms pause every 100: the walk takes at least 0.4 s.
    limits = Limits(pause_every=100, pause=lambda: time.sleep(0.02))

    async def main() -> tuple[Usage, list[float]]:
        lags: list[float] = []
        walking = asyncio.ensure_future(walk_in_thread(str(tmp_path), limits))
        while not walking.done():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)
        return await walking, lags

    usage, lags = asyncio.run(main())
    assert usage.entries == 2021
    assert len(lags) >= 20
    assert max(lags) < 0.2, f"the loop stalled {max(lags):.3f} s"


def test_a_file_with_two_names_counts_once(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain.bin", 10_000)
    os.link(plain, tmp_path / "linked.bin")
    usage = walk(str(tmp_path))
    assert usage.entries == 2  # the folder and the file, once
    assert_like_du(tmp_path, usage)
