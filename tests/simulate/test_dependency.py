"""The modelled dependency: capacity, a bounded queue, failure modes."""

from __future__ import annotations

import random

import pytest

from buttress import ConfigurationError
from buttress.simulate import Dependency, DependencyModel, EventLoop, Outage


def _answers(model: DependencyModel, sends: list[float],
             seed: int = 0) -> tuple[list[tuple[float, float, bool]], Dependency]:
    """Send a request at each time of ``sends``; (sent, answered, ok) per answer."""
    loop = EventLoop()
    dependency = Dependency(model, loop, random.Random(seed))
    answers: list[tuple[float, float, bool]] = []

    def send(at: float) -> None:
        dependency.submit(lambda ok: answers.append((at, loop.now, ok)))

    for at in sends:
        loop.at(at, send, at)
    loop.run()
    return answers, dependency


def test_throughput_is_capacity_over_service_time() -> None:
    assert DependencyModel(capacity=10, service_time=0.1).throughput == 100.0


def test_every_request_is_answered_once_and_a_full_queue_refuses_fast() -> None:
    model = DependencyModel(capacity=2, service_time=1.0, queue_limit=3, reject_latency=0.001)
    answers, dependency = _answers(model, [0.0] * 8)
    assert len(answers) == 8
    assert (dependency.received, dependency.served, dependency.refused) == (8, 5, 3)
    refused = [a for a in answers if a[1] == pytest.approx(0.001)]
    assert len(refused) == 3
    assert not any(ok for _, _, ok in refused)


def test_latency_grows_with_the_requests_ahead_in_the_queue() -> None:
    model = DependencyModel(capacity=1, service_time=0.1, queue_limit=1000)
    answers, _ = _answers(model, [0.0] * 200)
    latencies = [done - sent for sent, done, _ in answers]
    assert latencies == sorted(latencies)  # first in, first out
    # 200 requests on one worker at 0.1 s each: the last waits about 20 s.
    assert 15.0 < latencies[-1] < 25.0


def test_failure_rate_fails_that_share_of_served_requests() -> None:
    model = DependencyModel(capacity=100, service_time=0.01, failure_rate=0.25)
    answers, _ = _answers(model, [i * 0.01 for i in range(4000)])
    failed = sum(not ok for _, _, ok in answers) / len(answers)
    assert failed == pytest.approx(0.25, abs=0.02)


def test_an_outage_refuses_every_request_inside_its_window_only() -> None:
    model = DependencyModel(capacity=10, service_time=0.01,
                            outages=(Outage(start=1.0, duration=1.0),))
    answers, dependency = _answers(model, [0.5, 1.0, 1.5, 2.0])
    assert [ok for _, _, ok in sorted(answers)] == [True, False, False, True]
    assert dependency.refused == 2


def test_same_seed_same_answers() -> None:
    model = DependencyModel(capacity=3, service_time=0.2, failure_rate=0.3)
    sends = [i * 0.05 for i in range(100)]
    assert _answers(model, sends, seed=4)[0] == _answers(model, sends, seed=4)[0]


@pytest.mark.parametrize(("field", "value"), [("capacity", 0), ("service_time", 0.0),
                                              ("failure_rate", 1.5), ("queue_limit", -1)])
def test_a_bad_model_names_its_field(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=rf"DependencyModel\.{field}"):
        DependencyModel(**{field: value})
