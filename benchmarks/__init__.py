"""buttress's benchmarks against its peers; run ``python -m benchmarks --quick``.

Outside the package on purpose: the peers (tenacity, stamina, backoff,
pybreaker, circuitbreaker, aiobreaker, purgatory; the ``bench`` extra) are
imported here and nowhere in ``src/``.
"""

import logging

# Retry logging is off for every library measured (see cases_retry for the
# peers'): with no handler configured, buttress's WARNINGs would otherwise go to
# stderr through logging.lastResort. With this NullHandler no record is built.
logging.getLogger("buttress").addHandler(logging.NullHandler())
