"""The home page's reads of each running server's launch: the config once per page.

A server started by this hub process carries its approved launch; after a restart, the
launch is rebuilt from the spawner's state and the launch config
(:func:`eohub.spawner.form.running.stored_launch`), which is read off the event loop,
once per spawner class and page, and shared by concurrent page views.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from eohub.domain.launch.config import LaunchConfig
from eohub.domain.launch.profiles import Profile
from eohub.spawner.form.running import RunningLaunch, stored_launch
from eohub.spawner.ledger import STATE_KEY
from eohub.spawner.mixin import QuotaSpawnerMixin


class LaunchReader:
    """A page's reads of the launch config and profiles: once per spawner class, off the
    event loop for the config file; shared by the page's rows."""

    def __init__(self) -> None:
        self._reads: dict[type, asyncio.Future[tuple[LaunchConfig, Sequence[Profile]]]] = {}

    def close(self) -> None:
        """Stop the reads the page no longer waits for (a ``profile_list`` callable that
        hangs); the config file's read is shared, and ends by itself."""
        for read in self._reads.values():
            read.cancel()

    async def launch_of(self, spawner: QuotaSpawnerMixin) -> RunningLaunch | None:
        """What ``spawner``'s server was launched as; None when eohub did not start it.
        Raises whatever a bad state, config or profile list raises."""
        if spawner.launch is not None:
            return RunningLaunch.of(spawner.launch)
        state = spawner.get_state()
        if not isinstance(state.get(STATE_KEY), Mapping):
            return None  # not started by eohub: no need to read the config
        read = self._reads.get(type(spawner))
        if read is None:
            read = asyncio.ensure_future(_read_config(spawner))
            self._reads[type(spawner)] = read
        # Shielded: one row's cancellation must not cancel the others' shared read.
        config, profiles = await asyncio.shield(read)
        options = getattr(spawner, "user_options", None)
        return stored_launch(
            config, profiles, state, options if isinstance(options, Mapping) else {}
        )


async def _read_config(spawner: QuotaSpawnerMixin) -> tuple[LaunchConfig, Sequence[Profile]]:
    config = await asyncio.shield(_config_file_read(spawner))
    return config, await spawner.launch_profiles()


#: The launch config reads in flight, by spawner class and file: page views share one,
#: so a hung file (a stalled NFS mount) holds one thread, not one per page view.
_config_reads: dict[tuple[type, str], asyncio.Future[LaunchConfig]] = {}


def _config_file_read(spawner: QuotaSpawnerMixin) -> asyncio.Future[LaunchConfig]:
    """``spawner.launch_config()``, read and validated in a thread: the hub's event loop
    serves everyone meanwhile."""
    key = (type(spawner), str(getattr(spawner, "launch_config_file", "")))
    found = _config_reads.get(key)
    if found is not None and found.get_loop() is asyncio.get_running_loop():
        return found
    read = asyncio.ensure_future(asyncio.to_thread(spawner.launch_config))

    def done(_: asyncio.Future[LaunchConfig]) -> None:
        if _config_reads.get(key) is read:
            del _config_reads[key]

    read.add_done_callback(done)
    _config_reads[key] = read
    return read


__all__ = ["LaunchReader"]
