"""EmbeddingCache with its asyncio forms (the rest is the C++ class, hetcache._core)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence, Tuple

import numpy as np

from . import _core


def _resolve(future: asyncio.Future, getter: Callable[[], Any]) -> None:
    # On the loop's thread: the C++ future is ready, so getter() returns at once.
    if future.cancelled():
        return
    try:
        future.set_result(getter())
    except BaseException as error:  # the call's error, raised to whoever awaits it
        future.set_exception(error)


def _start(loop: asyncio.AbstractEventLoop) -> Tuple[asyncio.Future, Callable[[Any], None]]:
    future = loop.create_future()

    def done(getter: Callable[[], Any]) -> None:
        # On the thread that completed the work (with the GIL): hand over, never wait.
        try:
            loop.call_soon_threadsafe(_resolve, future, getter)
        except RuntimeError:  # the loop was closed meanwhile: nobody is waiting any more
            pass

    return future, done


class EmbeddingCache(_core.EmbeddingCache):
    __doc__ = _core.EmbeddingCache.__doc__

    async def aget_batch(self, keys: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """get_batch without blocking the event loop: memory hits are served at once, misses
        are read from the durable store where the cache's strategy places them (fibers: many
        in flight on few threads), and the result arrives through the loop's thread-safe
        callback. Cancelling the awaiting task drops the result; the read still completes."""
        future, done = _start(asyncio.get_running_loop())
        self._get_batch_async(keys, done)
        return await future

    async def aput_batch(self, keys: Sequence[str], vectors: Any, ttl: float | None = None) -> None:
        """put_batch without blocking the event loop; vectors are read in place until the write
        is done (the call keeps a reference to them)."""
        future, done = _start(asyncio.get_running_loop())
        self._put_batch_async(keys, vectors, ttl, done)
        await future

    async def aget_or_compute(self, keys: Sequence[str], fn: Callable[[list], Any],
                              ttl: float | None = None) -> np.ndarray:
        """get_or_compute without blocking the event loop. fn(missing_keys) is a plain
        function: it runs on one of the cache's I/O threads (with the GIL), once for the
        distinct misses, shared with concurrent callers missing the same keys."""
        future, done = _start(asyncio.get_running_loop())
        self._get_or_compute_async(keys, fn, ttl, done)
        return await future
