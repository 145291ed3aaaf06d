"""Waiting in a browser page under the service's Content-Security-Policy.

Playwright's ``wait_for_function`` polls a string predicate inside the page with ``eval``,
which the policy (no ``unsafe-eval``) refuses: the wait fails whenever the predicate is not
already true at its first check. Evaluating from outside the page (the DevTools protocol)
is not subject to the policy, so the wait polls that way instead.
"""

from __future__ import annotations

import asyncio
import time

from playwright.async_api import Page


async def wait_until(page: Page, expression: str, *, timeout_s: float = 30.0) -> None:
    """Return once ``expression`` is truthy in ``page``; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still false after {timeout_s:.0f} s: {expression}")
        await asyncio.sleep(0.05)
