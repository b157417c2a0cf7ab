"""retries.delay: exponential backoff, capped, with jitter in the upper half."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.model import retries, spec


def task(**options: object) -> spec.TaskSpec:
    return spec.TaskSpec.model_validate({"id": "t", "kind": "shell", "command": "x", **options})


class LowestRng:
    """Stands in for random.Random: returns the low end and records the bounds."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.calls.append((a, b))
        return a


def test_exponential_growth_without_jitter() -> None:
    t = task(retry_backoff=0.5, retry_backoff_max=1000, retry_jitter=False)
    assert [retries.delay(t, n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_capped_at_backoff_max() -> None:
    t = task(retry_backoff=1, retry_backoff_max=10, retry_jitter=False)
    assert [retries.delay(t, n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
    assert retries.delay(t, spec.MAX_RETRIES) == 10


def test_defaults() -> None:
    t = task(retry_jitter=False)
    assert retries.delay(t, 1) == 1.0
    assert retries.delay(t, 20) == 300.0


def test_zero_backoff_is_zero_even_with_jitter() -> None:
    rng = LowestRng()
    t = task(retry_backoff=0, retry_backoff_max=0)
    assert retries.delay(t, 3, rng) == 0  # type: ignore[arg-type]
    assert rng.calls == []


def test_jitter_draws_from_upper_half() -> None:
    rng = LowestRng()
    t = task(retry_backoff=2, retry_backoff_max=100)
    assert retries.delay(t, 3, rng) == 4.0  # type: ignore[arg-type]
    assert rng.calls == [(4.0, 8.0)]
    retries.delay(t, 10, rng)  # type: ignore[arg-type]
    assert rng.calls[-1] == (50.0, 100.0)


def test_jitter_spreads_within_bounds() -> None:
    t = task(retry_backoff=1, retry_backoff_max=60)
    rng = random.Random(1234)
    draws = [retries.delay(t, 4, rng) for _ in range(500)]
    assert all(4.0 <= d <= 8.0 for d in draws)
    assert max(draws) - min(draws) > 3.0  # spread over the range, not a constant
    assert all(4.0 <= retries.delay(t, 4) <= 8.0 for _ in range(50))  # module rng


@settings(max_examples=200, deadline=None)
@given(backoff=st.floats(0, 1000), cap=st.floats(0, 5000), n=st.integers(1, spec.MAX_RETRIES),
       jitter=st.booleans(), seed=st.integers(0, 2**32))
def test_delay_bounds(backoff: float, cap: float, n: int, jitter: bool, seed: int) -> None:
    cap = max(cap, backoff)
    t = task(retry_backoff=backoff, retry_backoff_max=cap, retry_jitter=jitter)
    base = min(cap, backoff * 2 ** (n - 1))
    d = retries.delay(t, n, random.Random(seed))
    if jitter:
        assert base / 2 <= d <= base
    else:
        assert d == pytest.approx(base)
    assert d <= cap
