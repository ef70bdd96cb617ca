"""Retries with exponential backoff for the kachery network zone (private).

Kept tiny and self-contained on purpose: callers raise :class:`Transient` for trouble
worth retrying (connection errors, timeouts, 5xx); anything else propagates at once.
When the attempts or the time budget run out, :class:`ZoneUnavailableError` is raised
with the last failure in its message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import ZoneUnavailableError

__all__ = ["RetryPolicy", "Transient", "with_retries"]

T = TypeVar("T")


class Transient(Exception):
    """A failure that may go away if the request is repeated."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry: at most ``attempts`` tries within ``budget`` seconds in total.

    The n-th wait is ``min(first_delay * 2**n, max_delay)`` with +-25 % jitter, and never
    runs past the budget.
    """

    attempts: int = 8
    budget: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0-based), jittered."""
        base = min(self.first_delay * (2.0**retry), self.max_delay)
        return base * random.uniform(0.75, 1.25)


def with_retries(policy: RetryPolicy, what: str, call: Callable[[], T]) -> T:
    """Run ``call``; on :class:`Transient`, wait and try again within ``policy``."""
    deadline = time.monotonic() + policy.budget
    failures: list[str] = []
    for retry in range(max(policy.attempts, 1)):
        try:
            return call()
        except Transient as exc:
            failures.append(str(exc))
        remaining = deadline - time.monotonic()
        if retry + 1 >= policy.attempts or remaining <= 0:
            break
        time.sleep(min(policy.delay(retry), remaining))
    raise ZoneUnavailableError(
        f"{what} failed {len(failures)} time(s) within {policy.budget:g} s; "
        f"last error: {failures[-1]}. The service may be down or unreachable: try again "
        "later (KACHERY_NETWORK_RETRY_SECONDS sets how long to keep retrying)"
    )
