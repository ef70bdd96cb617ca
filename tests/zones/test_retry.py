"""RetryPolicy: exponential backoff, bounded attempts and total time, transient only."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kachery_flows import ObjectNotFoundError, ZonePermissionError, ZoneUnavailableError
from kachery_flows._retry import RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures: int, calls: list[int]) -> Callable[[], str]:
    def operation() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise ZoneUnavailableError(f"HTTP 503 (call {len(calls)})")
        return "ok"

    return operation


def test_retries_transient_failures_then_succeeds() -> None:
    clock = FakeClock()
    calls: list[int] = []
    policy = RetryPolicy(initial_delay=1.0, jitter=False)
    assert policy.call(flaky(3, calls), sleep=clock.sleep, clock=clock.clock) == "ok"
    assert len(calls) == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    clock = FakeClock()
    calls: list[int] = []
    policy = RetryPolicy(max_attempts=3, initial_delay=0.1, jitter=False)
    with pytest.raises(ZoneUnavailableError, match=r"call 3\).*3 attempts.*attempts exhausted"):
        policy.call(flaky(10, calls), sleep=clock.sleep, clock=clock.clock)
    assert len(calls) == 3 and clock.sleeps == pytest.approx([0.1, 0.2])


def test_total_time_bounds_the_retries() -> None:
    clock = FakeClock()
    calls: list[int] = []
    policy = RetryPolicy(total_seconds=10.0, max_attempts=100, initial_delay=1.0, jitter=False)
    with pytest.raises(ZoneUnavailableError, match="time budget"):
        policy.call(flaky(1000, calls), sleep=clock.sleep, clock=clock.clock)
    assert clock.now <= 10.0
    assert clock.sleeps == [1.0, 2.0, 4.0]  # the next sleep (8 s) would cross 10 s


def test_delays_are_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=8, initial_delay=1.0, max_delay=5.0)
    assert policy.delays() == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    clock = FakeClock()
    with pytest.raises(ZoneUnavailableError):
        policy.call(flaky(100, []), sleep=clock.sleep, clock=clock.clock)
    for slept, nominal in zip(clock.sleeps, policy.delays(), strict=True):
        assert nominal * 0.5 <= slept <= nominal


@pytest.mark.parametrize(
    "error", [ObjectNotFoundError("gone"), ZonePermissionError("403"), ValueError("bug")]
)
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    calls: list[int] = []

    def operation() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        RetryPolicy().call(operation, sleep=lambda s: pytest.fail("slept"))
    assert calls == [1]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"total_seconds": -1}, {"initial_delay": -1}, {"multiplier": 0.5}],
)
def test_invalid_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
