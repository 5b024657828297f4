"""Resilience policies from a configuration file, the environment and code.

What this shows:

* a JSON policy file with named ``retry_configs`` and ``circuit_breaker_configs``
  (and an ``operations`` section for the presets), loaded with
  ``resilience_config.load_from_file``;
* ``@resilience_config.protect("orders")``: a function that looks its policy up
  by name when it is called, so it can be decorated before the file is loaded;
* ``resilience_config.reload()`` after the file changed: the already-decorated
  function makes 5 attempts instead of 3 from its next call, no restart needed;
* ``save_to_file`` writing the same configuration as TOML, and loading it back
  giving equal settings and policies;
* an environment variable (``BUTTRESS_DATABASE_TIMEOUT``, set by the script
  itself) read with ``load_env()``, and ``explain()`` naming where every
  effective value came from: built-in default, file (with its line), environment
  variable, or code;
* a bad file: the ``ConfigurationError`` names the file, line, key and value,
  and the configuration in force stays as it was.

Files are written to a temporary directory; the printed paths show it as
``<tmp>``. The stand-in dependency is a ``ScriptedCall`` and every retry has
``base_delay = 0``, so the script runs in milliseconds::

    .venv/bin/python examples/configuration.py
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from buttress import (
    ConfigurationError,
    RetryExhaustedError,
    database_resilient,
    explain,
    load_env,
    resilience_config,
)
from buttress.testing import ScriptedCall

POLICY: dict[str, Any] = {
    "operations": {
        "database": {"max_attempts": 4, "timeout_seconds": 10.0},
    },
    "retry_configs": {
        "orders": {"max_attempts": 3, "base_delay": 0, "jitter": 0,
                   "exceptions": ["ConnectionError", "TimeoutError"]},
    },
    "circuit_breaker_configs": {
        "orders": {"failure_threshold": 10, "recovery_timeout": 30.0},
    },
}

# The stand-in orders database: down for the whole script.
orders_db = ScriptedCall(ConnectionError("orders db is restarting"))


# Decorated before any file is loaded: the policy named "orders" (the retry and
# the breaker config of that name) is looked up when the function is called.
@resilience_config.protect("orders")
def load_order(order_id: int) -> dict[str, Any]:
    order: dict[str, Any] = orders_db("SELECT * FROM orders WHERE id = ?", order_id)
    return order


def try_load_order() -> None:
    """Call the protected function once and report how it gave up."""
    calls_before = orders_db.calls
    try:
        load_order(7)
    except RetryExhaustedError as exc:
        print(f"load_order(7): RetryExhaustedError after {exc.attempts} attempts "
              f"(database calls +{orders_db.calls - calls_before})")


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)

        def shown(text: object) -> str:
            """``text`` with the temporary directory written as ``<tmp>``."""
            return str(text).replace(str(tmp), "<tmp>")

        print("== load a JSON policy file ==")
        policy_json = tmp / "policy.json"
        write_json(policy_json, POLICY)
        resilience_config.load_from_file(policy_json)
        print(f"retry_configs: {sorted(resilience_config.retry_configs)}, "
              f"circuit_breaker_configs: {sorted(resilience_config.circuit_breaker_configs)}")
        try_load_order()

        print("== edit the file, reload ==")
        POLICY["retry_configs"]["orders"]["max_attempts"] = 5
        write_json(policy_json, POLICY)
        resilience_config.reload()
        print(f"load_order.resilience.retry_config.max_attempts = "
              f"{load_order.resilience.retry_config.max_attempts}")
        try_load_order()

        print("== save as TOML, load it back ==")
        before = resilience_config.as_dict()
        retry_before = dict(resilience_config.retry_configs)
        breakers_before = dict(resilience_config.circuit_breaker_configs)
        policy_toml = tmp / "policy.toml"
        resilience_config.save_to_file(policy_toml)
        print(shown(f"{policy_toml}:"))
        for line in policy_toml.read_text(encoding="utf-8").splitlines():
            print(f"  {line}".rstrip())
        resilience_config.load_from_file(policy_toml)
        print(f"round trip equal: settings {resilience_config.as_dict() == before}, "
              f"retry configs {dict(resilience_config.retry_configs) == retry_before}, "
              f"breaker configs "
              f"{dict(resilience_config.circuit_breaker_configs) == breakers_before}")

        print("== environment override, explain() ==")
        setting = explain("database")["database.timeout_seconds"]
        print(shown(f"before: database.timeout_seconds = {setting.value} ({setting.where})"))
        os.environ["BUTTRESS_DATABASE_TIMEOUT"] = "12.5"
        load_env()  # reads BUTTRESS_* again; the environment outranks the file
        setting = explain("database")["database.timeout_seconds"]
        print(f"after load_env(): database.timeout_seconds = {setting.value} ({setting.where})")

        # A preset reads the same settings; its keyword arguments outrank them all.
        report = database_resilient(operation_name="orders_report", base_delay=0.0)(orders_db)
        print("database_resilient(base_delay=0.0).resilience.explain():")
        for line in str(report.resilience.explain()).splitlines():
            print(f"  {shown(line)}")

        print("== a bad file ==")
        bad = tmp / "bad.json"
        bad.write_text('{\n  "retry_configs": {\n    "orders": {\n'
                       '      "max_attemps": 2\n    }\n  }\n}\n', encoding="utf-8")
        try:
            resilience_config.load_from_file(bad)
        except ConfigurationError as exc:
            print(f"ConfigurationError: {shown(exc)}")
        print(f"still in force: load_order makes "
              f"{load_order.resilience.retry_config.max_attempts} attempts")


if __name__ == "__main__":
    # buttress logs retries, give-ups, opened breakers and timeouts as WARNINGs;
    # show them on stdout, between the lines this script prints.
    logging.basicConfig(format="    log: %(message)s", stream=sys.stdout)
    main()
