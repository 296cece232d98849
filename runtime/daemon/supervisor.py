"""What the daemon knows beyond the store: when each container exits or is removed, and its stdin pipe.

Containers run under the CLI's own monitor (``runtime.monitor``), one process each, so they outlive the daemon. The
daemon watches a monitor's pid with a pidfd on the event loop: the monitor has recorded the exit code in
state.json before it exits. ``docker run`` asks to ``wait`` and ``attach`` before it ``start``s, so a waiter takes
the *next* exit (``Watch``) and is told when it comes; ``AutoRemove`` containers are removed here, after their exit,
and that is the ``removed`` a ``wait?condition=removed`` waits for. A restarted daemon picks running monitors up
again (``recover``) and removes the auto-remove containers that exited while it was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import containers
from ..config import Settings
from ..containers import Container
from ..errors import RuntimeFailure
from ..ociruntime import OciRuntime, alive, find
from ..store import Store
from .dockerconfig import auto_remove
from .http import log

if TYPE_CHECKING:
    from .execs import Exec


@dataclass
class Watch:
    """One awaited event (the next exit, or the removal) and the exit code that came with it."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    code: int = 0

    def fire(self, code: int) -> None:
        self.code = code
        self.event.set()


class Supervisor:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.exits: dict[str, Watch] = {}
        self.removals: dict[str, Watch] = {}
        self.stdin: dict[str, list[int]] = {}
        self.last_code: dict[str, int] = {}
        self.execs: dict[str, Exec] = {}  # exec instances by id, forgotten with their container
        self.tasks: set[asyncio.Task[None]] = set()
        self.watched: set[str] = set()  # containers whose monitor's pidfd is on the loop

    def runtime(self) -> OciRuntime:
        return OciRuntime(find(self.settings.oci_runtime), self.store.runc_root)

    def next_exit(self, container: Container) -> Watch:
        """The container's next exit; a running one the daemon did not start (`runtime run`) is watched from now."""
        if container.id not in self.watched and container.running():
            self.watch(container.id, container.state.get("monitor_pid"))
        return self.exits.setdefault(container.id, Watch())

    def removal(self, cid: str) -> Watch:
        return self.removals.setdefault(cid, Watch())

    def stdin_pipe(self, cid: str) -> list[int]:
        """[read, write] ends of a container's stdin, made by whichever of attach and start comes first (-1: closed)."""
        if cid not in self.stdin:
            self.stdin[cid] = list(os.pipe())
        return self.stdin[cid]

    def close_stdin(self, cid: str, end: int | None = None) -> None:
        """Close one end (0 read, 1 write: the container then reads EOF), or both and forget the pipe."""
        ends = self.stdin.get(cid)
        if ends is None:
            return
        for i in (0, 1) if end is None else (end,):
            if ends[i] >= 0:
                with contextlib.suppress(OSError):
                    os.close(ends[i])
                ends[i] = -1
        if end is None:
            del self.stdin[cid]

    async def start(self, container: Container, with_stdin: bool) -> None:
        runtime = self.runtime()
        read_end = self.stdin_pipe(container.id)[0] if with_stdin else -1
        try:
            await asyncio.to_thread(self._launch, container, runtime, read_end if read_end >= 0 else None)
        except Exception:
            await self.exited(container.id)  # attach and wait, already waiting, are told: never a hang
            raise
        finally:
            self.close_stdin(container.id, 0)  # the container holds it now
        fresh = containers.load(self.store, container.id)
        self.watch(container.id, fresh.state.get("monitor_pid"))

    def _launch(self, container: Container, runtime: OciRuntime, stdin: int | None) -> None:
        from ..run import launch_detached

        containers.mount_rootfs(self.store, container)
        launch_detached(self.store, container, runtime, stdin)

    def watch(self, cid: str, monitor_pid: object) -> None:
        """Call ``exited`` once the monitor process is gone (now, if it already is); once per container."""
        if cid in self.watched:
            return
        loop = asyncio.get_running_loop()
        try:
            if not isinstance(monitor_pid, int):
                raise ProcessLookupError
            fd = os.pidfd_open(monitor_pid)
        except ProcessLookupError:
            self.spawn(self.exited(cid))
            return
        self.watched.add(cid)

        def ready() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(monitor_pid, os.WNOHANG)  # our child, unless a previous daemon started it
            self.watched.discard(cid)
            self.spawn(self.exited(cid))

        loop.add_reader(fd, ready)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def exited(self, cid: str) -> None:
        self.close_stdin(cid)
        try:
            container = await asyncio.to_thread(containers.load, self.store, cid)
        except (OSError, ValueError):
            self.removed(cid)
            return
        code = container.state.get("exit_code")
        self.last_code[cid] = code if isinstance(code, int) else 255
        watch = self.exits.pop(cid, None)
        if watch is not None:
            watch.fire(self.last_code[cid])
        if auto_remove(container):
            await self.remove(container, force=True)

    async def remove(self, container: Container, *, force: bool) -> None:
        await asyncio.to_thread(containers.remove, self.store, container, self.runtime(), force=force)
        code = container.state.get("exit_code")
        if container.id not in self.last_code and isinstance(code, int):
            self.last_code[container.id] = code
        self.removed(container.id)

    def removed(self, cid: str) -> None:
        """The container is gone: whoever waits for its removal, or for an exit that can no longer come, is told."""
        self.close_stdin(cid)
        self.execs = {k: e for k, e in self.execs.items() if e.container.id != cid}
        code = self.last_code.pop(cid, 0)
        for watches in (self.removals, self.exits):
            watch = watches.pop(cid, None)
            if watch is not None:
                watch.fire(code)

    async def recover(self) -> None:
        """After a daemon restart: watch the monitors still running, remove exited auto-remove containers."""
        for container in await asyncio.to_thread(containers.all_containers, self.store):
            monitor = container.state.get("monitor_pid")
            if container.running() and isinstance(monitor, int) and alive(monitor):
                self.watch(container.id, monitor)
            elif container.status == "exited" and auto_remove(container):
                try:
                    await self.remove(container, force=True)
                except (RuntimeFailure, OSError) as exc:
                    log.warning("could not remove %s: %s", container.id, exc)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for cid in list(self.stdin):
            self.close_stdin(cid)
