"""The portable way to measure a directory: a bounded walk that counts as ``du`` does.

:func:`walk` adds up what ``du -s -B1 -x <dir>`` reports, and counts what
``du -s -x --inodes <dir>`` counts:

- the bytes are allocated blocks (``st_blocks * 512``), so a sparse file counts only
  the blocks it uses, and directories count their own blocks;
- symbolic links are never followed: a link counts as the link (its own blocks), never
  as what it points to, inside the tree or outside it;
- it stays on the directory's filesystem (``st_dev``): a filesystem mounted below it is
  not counted, not even its mount point, as ``du -x`` leaves it out;
- a file with several hard links in the tree counts once, by ``(st_dev, st_ino)``.
  Only files with ``st_nlink > 1`` are remembered, so memory grows with the hard-linked
  files and the folders still to read, not with the files walked;
- an entry it may not read (a folder without read or search permission) or that
  vanished while it ran is counted in :attr:`Usage.unreadable` / :attr:`Usage.vanished`
  and skipped; the folder's own blocks are counted, as ``du`` does.

Every ``pause_every`` entries it calls ``pause`` (a short sleep, so a busy file server's
other clients get the disk) and checks ``stop``; past ``max_entries`` it stops with
:class:`TooManyEntries`, so a partial sum is never taken for the whole.

It runs in a thread (:func:`walk_in_thread`): the sampler's event loop stays free.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK = 512  # st_blocks counts 512-byte units on every POSIX system


class WalkStopped(Exception):
    """The walk was asked to stop (the sampler is shutting down)."""


class TooManyEntries(Exception):
    """The directory holds more entries than ``max_entries``: its sum would be partial."""

    def __init__(self, path: str, limit: int) -> None:
        super().__init__(f"{path} holds more than {limit} entries")
        self.path = path
        self.limit = limit


@dataclass
class Usage:
    """What one walk counted."""

    bytes: int = 0
    entries: int = 0
    unreadable: int = 0
    vanished: int = 0
    first_problem: str = ""

    def problem(self, path: str, vanished: bool) -> None:
        if vanished:
            self.vanished += 1
        else:
            self.unreadable += 1
        if not self.first_problem:
            self.first_problem = path


@dataclass(frozen=True)
class Limits:
    """How much a walk may do, and how it yields."""

    max_entries: int = 10_000_000
    pause_every: int = 10_000
    pause: Callable[[], None] | None = None
    stop: threading.Event | None = None


def walk(root: str, limits: Limits | None = None) -> Usage:
    """Measure ``root`` (see the module doc). ``root`` itself must be a readable folder:
    its ``lstat`` failing raises the ``OSError``."""
    limits = limits or Limits()
    top = os.lstat(root)
    if not stat.S_ISDIR(top.st_mode):
        raise NotADirectoryError(f"{root} is not a directory")
    device = top.st_dev
    usage = Usage(bytes=top.st_blocks * BLOCK, entries=1)
    linked: set[tuple[int, int]] = set()
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = os.scandir(folder)
        except OSError as e:
            usage.problem(folder, isinstance(e, FileNotFoundError))
            continue
        with entries:
            _read_folder(entries, folder, device, usage, linked, pending, limits)
    return usage


def _read_folder(
    entries: Iterator[os.DirEntry[str]],
    folder: str,
    device: int,
    usage: Usage,
    linked: set[tuple[int, int]],
    pending: list[str],
    limits: Limits,
) -> None:
    while True:
        try:
            entry = next(entries)
        except StopIteration:
            return
        except OSError as e:  # the folder went away or failed while it was read
            usage.problem(folder, isinstance(e, FileNotFoundError))
            return
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError as e:
            usage.problem(entry.path, isinstance(e, FileNotFoundError))
            continue
        if info.st_dev != device:
            continue  # another filesystem mounted here: du -x leaves it out entirely
        is_dir = stat.S_ISDIR(info.st_mode)
        if info.st_nlink > 1 and not is_dir:
            key = (info.st_dev, info.st_ino)
            if key in linked:
                continue
            linked.add(key)
        usage.bytes += info.st_blocks * BLOCK
        usage.entries += 1
        if is_dir:
            pending.append(entry.path)
        if usage.entries > limits.max_entries:
            raise TooManyEntries(folder, limits.max_entries)
        if usage.entries % limits.pause_every == 0:
            if limits.pause is not None:
                limits.pause()
            if limits.stop is not None and limits.stop.is_set():
                raise WalkStopped(folder)


async def walk_in_thread(root: str, limits: Limits | None = None) -> Usage:
    """:func:`walk` in a worker thread; the caller's event loop keeps running."""
    return await asyncio.to_thread(walk, root, limits)


__all__ = [
    "BLOCK",
    "Limits",
    "TooManyEntries",
    "Usage",
    "WalkStopped",
    "walk",
    "walk_in_thread",
]
