"""Replaying chunks at their recorded pace (``pace=1.0``), or at once (the default).

A recorded chunk carries its time since the request was sent. With ``pace`` set, each
chunk waits until ``time * pace`` has passed since the replay began, so a stream (and the
wait for its first byte) unfolds as it did live, scaled by the factor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator


def schedule(
    chunks: list[bytes], times: list[float], pace: float | None
) -> Iterator[tuple[float, bytes]]:
    """(seconds to wait, chunk), the wait computed when the chunk is due."""
    started = time.perf_counter()
    for position, chunk in enumerate(chunks):
        wait = 0.0
        if pace and position < len(times):
            wait = times[position] * pace - (time.perf_counter() - started)
        yield wait, chunk


def paced(chunks: list[bytes], times: list[float], pace: float | None) -> Iterator[bytes]:
    for wait, chunk in schedule(chunks, times, pace):
        if wait > 0:
            time.sleep(wait)
        yield chunk


async def paced_async(
    chunks: list[bytes], times: list[float], pace: float | None
) -> AsyncIterator[bytes]:
    for wait, chunk in schedule(chunks, times, pace):
        if wait > 0:
            await asyncio.sleep(wait)
        yield chunk
