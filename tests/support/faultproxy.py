"""An asyncio TCP proxy that injects faults between a client and a real server.

It runs its own event loop in a daemon thread, so it serves blocking clients (ldap3,
requests) and asyncio code in the test's loop alike. Faults can change while it runs:

- ``latency``: seconds added before each chunk is forwarded, both ways;
- ``blackhole``: accept connections and never answer (a silent server);
- ``drop_after``: close both sides once that many bytes went upstream-to-client;
- :meth:`FaultProxy.cut`: abort every open connection now, as a restart would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field


@dataclass
class FaultProxy:
    """Forward 127.0.0.1:<port> to (upstream_host, upstream_port), with faults."""

    upstream_host: str
    upstream_port: int
    latency: float = 0.0
    blackhole: bool = False
    drop_after: int | None = None
    port: int = 0
    connections: int = 0
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)
    _server: asyncio.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    def start(self) -> FaultProxy:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, "127.0.0.1", self.port)
                )
            except OSError as e:
                errors.append(e)
                ready.set()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(10)

    def cut(self) -> int:
        """Abort every open connection (a database restart, a network cut); keep listening.

        Returns how many connections were cut.
        """
        loop = self._loop
        assert loop is not None

        async def abort() -> int:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return len(tasks)

        return asyncio.run_coroutine_threadsafe(abort(), loop).result(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections += 1
        up_writer: asyncio.StreamWriter | None = None
        try:
            if self.blackhole:
                # Hold the connection open and read nothing back: a hung server.
                await asyncio.Event().wait()
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
            budget = [self.drop_after]
            await asyncio.gather(
                self._pipe(reader, up_writer, None),
                self._pipe(up_reader, writer, budget),
                return_exceptions=True,
            )
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # Cut (or stopping): reset both sides at once, as a dead peer would.
            if up_writer is not None:
                up_writer.transport.abort()
            writer.transport.abort()
        finally:
            if up_writer is not None:
                up_writer.close()
            writer.close()
            # Stopping the proxy cancels this task; closing must not log that as an error.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, budget: list[int | None] | None
    ) -> None:
        try:
            while data := await src.read(65536):
                if self.latency:
                    await asyncio.sleep(self.latency)
                if budget is not None and budget[0] is not None:
                    if len(data) >= budget[0]:
                        dst.write(data[: budget[0]])
                        await dst.drain()
                        # Cut the connection mid-stream, as a crashed server would.
                        dst.transport.abort()
                        return
                    budget[0] -= len(data)
                dst.write(data)
                await dst.drain()
        finally:
            if dst.can_write_eof():
                with contextlib.suppress(Exception):
                    dst.write_eof()
