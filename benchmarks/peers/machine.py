"""What the run ran on: CPU, cores, memory, load, Python and the versions of every package."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any

from benchmarks.peers.contenders import version_of

__all__ = ["PACKAGES", "describe"]

PACKAGES = (
    "llmcache",
    "cachetools",
    "diskcache",
    "redis",
    "gptcache",
    "langchain-core",
    "langchain-community",
    "SQLAlchemy",
    "redisvl",
    "faiss-cpu",
    "numpy",
    "orjson",
    "xxhash",
    "wordllama",
    "matplotlib",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _redis_server() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        return "not installed"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for part in out.stdout.split():
        if part.startswith("v="):
            return part[2:]
    return out.stdout.strip()[:40]


def describe() -> dict[str, Any]:
    """The machine and software of this run."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_memory_gib(), 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis_server": _redis_server(),
        "packages": {name: version_of(name) for name in PACKAGES},
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
    }
