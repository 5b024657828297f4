"""The event loop and the timeline: virtual time, order, bounded counts."""

from __future__ import annotations

import math

import pytest

from buttress import ConfigurationError
from buttress.simulate import EventLoop, Timeline, recovery_time


def test_events_run_in_time_order_and_ties_in_the_order_they_were_scheduled() -> None:
    loop = EventLoop()
    seen: list[str] = []
    loop.at(2.0, seen.append, "late")
    loop.at(1.0, seen.append, "first")
    loop.at(1.0, seen.append, "second")
    loop.at(0.5, lambda: loop.after(0.5, seen.append, "scheduled during the run"))
    assert loop.run() == 2.0
    assert seen == ["first", "second", "scheduled during the run", "late"]
    assert loop.events == 5


def test_an_event_in_the_past_is_refused() -> None:
    loop = EventLoop()
    loop.at(1.0, lambda: None)
    loop.run()
    with pytest.raises(ValueError, match="before now"):
        loop.at(0.5, lambda: None)
    with pytest.raises(ValueError, match="before now"):
        loop.at(math.nan, lambda: None)


def test_run_until_stops_at_that_time_and_keeps_later_events() -> None:
    loop = EventLoop()
    seen: list[float] = []
    for when in (1.0, 2.0, 3.0):
        loop.at(when, lambda: seen.append(loop.monotonic()))
    assert loop.run(until=2.5) == 2.5
    assert seen == [1.0, 2.0]
    assert loop.pending == 1


def test_nothing_sleeps_in_a_simulation() -> None:
    with pytest.raises(RuntimeError, match="nothing sleeps"):
        EventLoop().sleep(1.0)


def test_timeline_counts_per_bucket_and_clamps_late_events_into_the_last() -> None:
    t = Timeline(duration=3.0, width=1.0)
    for when in (0.1, 1.2, 1.9, 2.5, 99.0):
        t.add("succeeded", when)
    assert t.counts["succeeded"] == [1, 2, 2]
    assert t.rate("succeeded") == [1.0, 2.0, 2.0]
    assert t.total("succeeded", 1.0) == 4
    assert t.mean_rate("succeeded", 0.0, 2.0) == 1.5
    assert t.times() == [0.0, 1.0, 2.0]


def test_timeline_refuses_a_zero_width() -> None:
    with pytest.raises(ConfigurationError, match=r"Timeline\.width"):
        Timeline(duration=1.0, width=0.0)


def test_recovery_is_the_first_window_back_at_the_level_after_the_spike() -> None:
    goodput = [10.0, 10.0, 0.0, 0.0, 0.0, 9.0, 10.0, 10.0]
    assert recovery_time(goodput, 10.0, 20.0, 9.0, 20.0) == 30.0
    assert recovery_time(goodput[:5], 10.0, 20.0, 9.0, 20.0) is None


def test_import_buttress_simulate_loads_only_the_standard_library() -> None:
    import json
    import subprocess
    import sys
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import buttress.simulate\n"
        "new = {m.partition('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(new - set(sys.stdlib_module_names) - {'buttress'})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
