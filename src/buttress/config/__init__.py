"""Configuration: one typed settings object, fed from code, environment and files.

Where an effective value comes from, highest precedence first:

1. **code** — arguments of ``resilient(...)`` and the presets, and :func:`configure`;
2. **environment** — :func:`load_env` (prefix ``BUTTRESS_`` by default, read
   automatically the first time settings are needed; ``load_env(prefix="PYNOMALY_")``
   reads the ``pynomaly`` seed's variables unchanged, ``prefix=""`` the
   ``huleedu`` seed's ``CIRCUIT_BREAKER_*``/``RETRY_*``/``DEFAULT_TIMEOUT``);
3. **file** — :meth:`ResilienceConfig.load_from_file` (JSON or TOML, by suffix);
4. **built-in defaults** — the ``pynomaly`` seed's values per operation type.

:func:`explain` reports, for every effective value, which of these it came from.

Named policies (the ``retry_configs`` and ``circuit_breaker_configs`` sections of a
file, or :meth:`ResilienceConfig.update_config`) are looked up when a protected
call runs, not when it is decorated: every change bumps a generation counter, and
a decorated function compares one integer per call to notice it. So
``configure(resilience_enabled=False)``, :func:`load_env` and
``resilience_config.reload()`` change the behaviour of functions decorated long
before, without a restart::

    resilience_config.load_from_file("resilience.toml")

    @resilience_config.protect("database")
    def get_user(user_id: int) -> dict: ...

    # ... edit resilience.toml ...
    resilience_config.reload()      # get_user follows the new policy from its next call

Every bad value raises :class:`ConfigurationError` naming where it came from (the
file and line, the environment variable, the argument), the key and the value.

The package, by idea (each module states its own):

- :mod:`~buttress.config.schema`: the settings schema, field and alias metadata,
  and the check of one value;
- :mod:`~buttress.config.env`: the environment layer;
- :mod:`~buttress.config.files`: JSON and TOML files, read and written;
- :mod:`~buttress.config.live`: the live store (layers, named policies, reload);
- :mod:`~buttress.config.pipelines`: pipelines rebuilt when the store changes.
"""

from __future__ import annotations

from buttress.config.env import DEFAULT_ENV_PREFIX, ENV_NAMES
from buttress.config.files import MAX_FILE_BYTES
from buttress.config.files import _toml_dumps as _toml_dumps  # tests write files with it
from buttress.config.files import _toml_value as _toml_value
from buttress.config.live import (
    ResilienceConfig,
    configure,
    explain,
    get_settings,
    load_env,
    reset_settings,
    resilience_config,
)
from buttress.config.pipelines import LivePipeline, Protected
from buttress.config.schema import (
    OPERATION_TYPES,
    Explanation,
    OperationOverrides,
    OperationSettings,
    ResilienceSettings,
    Setting,
)

__all__ = [
    "DEFAULT_ENV_PREFIX",
    "ENV_NAMES",
    "MAX_FILE_BYTES",
    "OPERATION_TYPES",
    "Explanation",
    "LivePipeline",
    "OperationOverrides",
    "OperationSettings",
    "Protected",
    "ResilienceConfig",
    "ResilienceSettings",
    "Setting",
    "configure",
    "explain",
    "get_settings",
    "load_env",
    "reset_settings",
    "resilience_config",
]
