"""Where and with what a run happened: CPU, cores, Python, OS, library versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

__all__ = ["LIBRARIES", "describe"]

LIBRARIES = ("buttress", "tenacity", "stamina", "backoff", "pybreaker", "circuitbreaker",
             "aiobreaker", "purgatory")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, str]:
    """Label → value, in the order the report prints them."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()}" + (f" ({usable} usable)" if usable != os.cpu_count() else "")
    return {
        "CPU": cpu_model(),
        "Cores": cores,
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": platform.platform(),
        "Libraries": ", ".join(f"{name} {_version(name)}" for name in LIBRARIES),
    }
