"""Retries with exponential backoff and a bounded total time, written once for all zones.

A zone wraps each network operation in :meth:`RetryPolicy.call`. The operation signals
transient trouble (connection error, timeout, HTTP 5xx/429) by raising
:class:`~kachery_flows.errors.ZoneUnavailableError`; everything else (not found,
permission denied, corrupt bytes) propagates at once. When the attempts or the time
budget run out, the last transient error is re-raised with the attempt count and the
elapsed time added to its message.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import ZoneUnavailableError

__all__ = ["RetryPolicy", "transport_reason"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient zone failure.

    Parameters
    ----------
    total_seconds:
        Upper bound on the time spent in one operation's retries (attempts plus sleeps):
        no new attempt starts once a sleep would cross it. Default from
        ``KACHERY_FLOWS_RETRY_SECONDS`` (60).
    max_attempts:
        Attempts in all, the first included (1 disables retries).
    initial_delay:
        Sleep before the second attempt; doubled (``multiplier``) after each failure.
    max_delay:
        Cap on one sleep.
    multiplier:
        Growth factor of the sleeps.
    jitter:
        Sleep a random 50-100 % of the computed delay, so many clients do not retry
        in lockstep.
    budget_variable:
        The environment variable named in the give-up message as the way to change the
        time budget.
    """

    total_seconds: float = 60.0
    max_attempts: int = 8
    initial_delay: float = 0.25
    max_delay: float = 8.0
    multiplier: float = 2.0
    jitter: bool = True
    budget_variable: str = "KACHERY_FLOWS_RETRY_SECONDS"

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.total_seconds < 0 or self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("retry times must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier}")

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        """The default policy, with the time budget from ``KACHERY_FLOWS_RETRY_SECONDS``."""
        from .config import load_settings

        return cls(total_seconds=load_settings().retry_seconds)

    def delays(self) -> list[float]:
        """The un-jittered sleeps between attempts (``max_attempts - 1`` of them)."""
        out: list[float] = []
        delay = self.initial_delay
        for _ in range(self.max_attempts - 1):
            out.append(min(delay, self.max_delay))
            delay *= self.multiplier
        return out

    def call(
        self,
        operation: Callable[[], T],
        *,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> T:
        """Run ``operation``, retrying it while it raises :class:`ZoneUnavailableError`."""
        start = clock()
        delays = self.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation()
            except ZoneUnavailableError as exc:
                elapsed = clock() - start
                if attempt > len(delays):
                    raise self._exhausted(exc, attempt, elapsed, "attempts") from exc
                delay = delays[attempt - 1]
                if self.jitter:
                    delay *= random.uniform(0.5, 1.0)
                if elapsed + delay > self.total_seconds:
                    raise self._exhausted(exc, attempt, elapsed, "time budget") from exc
                sleep(delay)

    def _exhausted(
        self, exc: ZoneUnavailableError, attempts: int, elapsed: float, limit: str
    ) -> ZoneUnavailableError:
        noun = "attempt" if attempts == 1 else "attempts"
        return ZoneUnavailableError(
            f"{exc} (gave up after {attempts} {noun} in {elapsed:.1f} s: retry {limit} "
            f"exhausted; {self.budget_variable} sets the time budget)"
        )


def transport_reason(exc: BaseException) -> str:
    """A short reason for a transport error: ``"ConnectionError: Connection refused"``
    rather than urllib3's nested retry and connection reprs.

    Follows the wrapped causes (``reason``, ``__cause__``, ``__context__``, an exception in
    ``args``) down to the innermost operating-system error and names it; falls back to the
    exception's own text.
    """
    seen: set[int] = set()
    stack: list[object] = [exc]
    found: str | None = None
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            found = current.strerror
        inner = [getattr(current, "reason", None), current.__cause__, current.__context__]
        stack.extend(item for item in (*inner, *current.args) if isinstance(item, BaseException))
    return f"{type(exc).__name__}: {found if found is not None else exc}"
