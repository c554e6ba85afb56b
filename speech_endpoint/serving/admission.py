"""Admission: one worker thread runs the handler, one request at a time (as one platform
replica does), and requests wait for it in a bounded FIFO (`Slot`)."""
from __future__ import annotations

import asyncio
import collections
import queue
import threading
from collections.abc import Callable
from typing import Any


class Worker:
    """One daemon thread running submitted callables in order; results come back as
    asyncio futures. A daemon, so a shutdown never waits for a long transcription."""

    def __init__(self, name: str = "handler-worker"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((fn, future, loop))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, future, loop = item
            try:
                result, error = fn(), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed (shutdown)
                return


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Slot:
    """The one handler slot with a FIFO of waiters. Ownership passes directly from the
    releasing request to the next waiter, so nobody can jump the queue."""

    def __init__(self):
        self.busy = False
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    def try_enter(self, max_waiting: int) -> bool | None:
        """True: got the slot now; None: must wait (`wait`); False: queue full."""
        if not self.busy and not self.waiters:
            self.busy = True
            return True
        return None if len(self.waiters) < max_waiting else False

    async def wait(self, timeout: float) -> bool:
        """Queue up; True once the slot is ours, False after `timeout` (then not queued)."""
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        try:
            await asyncio.wait({future}, timeout=max(timeout, 0))
        except BaseException:
            self._leave(future)
            raise
        if future.done():
            return True
        self._leave(future)
        return False

    def _leave(self, future: asyncio.Future) -> None:
        if future.done() and not future.cancelled():
            self.release()  # it was handed to us but we are leaving: pass it on
            return
        try:
            self.waiters.remove(future)
        except ValueError:
            pass
        future.cancel()

    def release(self) -> None:
        while self.waiters:
            future = self.waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.busy = False
