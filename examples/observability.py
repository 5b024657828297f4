"""Prometheus metrics and OpenTelemetry spans from a small scripted run.

What this shows:

* ``PrometheusMetrics(registry).install()``: one listener that hears every
  policy and keeps ``circuit_breaker_state`` (0/1/2), ``circuit_breaker_trips_total``,
  ``resilient_retries_total``, ``resilient_rejections_total``,
  ``resilient_fallbacks_total`` and the ``resilient_operation_duration_seconds``
  histogram, labelled only by policy/operation names and fixed words;
* ``OpenTelemetryTracing(provider).install()``: one span per protected call,
  with an ``attempt`` event per attempt and status ERROR when the call gives up;
* a stand-in dependency (``ScriptedCall``) that fails on cue, so the run is the
  same every time; retries wait 0 s, so nothing sleeps.

Run it::

    .venv/bin/python examples/observability.py
"""

from __future__ import annotations

import logging
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest

from buttress import CircuitBreaker, CircuitBreakerError, Fallback, Retry, RetryExhaustedError
from buttress.observe.otel import OpenTelemetryTracing
from buttress.observe.prometheus import PrometheusMetrics
from buttress.testing import ScriptedCall

# buttress logs retries, give-ups, opened breakers and timeouts as WARNINGs;
# show them on stdout, between the lines this script prints.
logging.basicConfig(format="    log: %(message)s", stream=sys.stdout)
registry = CollectorRegistry()
metrics = PrometheusMetrics(registry).install()
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
tracing = OpenTelemetryTracing(tracer_provider=provider, record_metrics=False).install()

# A price service that fails twice, then answers: one call, two retries.
fetch_price = Retry(max_attempts=3, base_delay=0.0, name="fetch_price")
print("price:", fetch_price.call(ScriptedCall(ConnectionError, ConnectionError, 42.0)))

# An inventory service that is down: the breaker trips after 2 failures, and
# the next calls are turned away without reaching it.
inventory = CircuitBreaker("inventory", failure_threshold=2, recovery_timeout=60.0)
down = ScriptedCall(ConnectionError("inventory is down"))
for _ in range(4):
    try:
        inventory.call(down)
    except CircuitBreakerError as exc:
        print(f"rejected by breaker {exc.name!r} (state={exc.state.value})")
    except ConnectionError as exc:
        print(f"failed: {exc}")

# A recommendations call that gives up and is answered by its fallback.
recommend = Fallback([], name="recommendations")(
    Retry(max_attempts=2, base_delay=0.0, name="recommend")(ScriptedCall(TimeoutError)))
print("recommendations:", recommend())
try:
    Retry(max_attempts=2, base_delay=0.0, name="charge").call(ScriptedCall(ConnectionError))
except RetryExhaustedError as exc:
    print(f"charge: {type(exc).__name__} after {exc.attempts} attempts")

tracing.uninstall()
metrics.uninstall()

print("\n--- Prometheus text (buttress metrics, zero-valued samples left out) ---")
for line in generate_latest(registry).decode().splitlines():
    if line.startswith("#") or "_created" in line or line.endswith(" 0.0"):
        continue
    if "_bucket" in line and 'le="+Inf"' not in line:
        continue
    print(line)

print("\n--- OpenTelemetry spans ---")
for span in spans.get_finished_spans():
    attempts = [dict(event.attributes or {}).get("outcome") for event in span.events
                if event.name == "attempt"]
    print(f"span {span.name!r}: status={span.status.status_code.name}, attempts={attempts}")
provider.shutdown()
