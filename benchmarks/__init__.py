"""buttress's benchmarks against its peers; run ``python -m benchmarks --quick``.

Outside the package on purpose: the peers (tenacity, stamina, backoff,
pybreaker, circuitbreaker, aiobreaker, purgatory; the ``bench`` extra) are
imported here and nowhere in ``src/``.
"""
