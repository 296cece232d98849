"""Waiting in background tasks: they are stopped by an event, never cancelled, so what they do finishes."""

from __future__ import annotations

import asyncio


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Whether ``stop`` was set within ``seconds`` (returning as soon as it is)."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
