"""Run a coroutine to completion from synchronous test code, on a thread of its own.

Playwright's sync API keeps an event loop running on the main thread for the whole session, so plain
``asyncio.run`` there fails once the browser tests have started; a fresh thread always works."""
import asyncio
from concurrent.futures import ThreadPoolExecutor


def run(coro):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
