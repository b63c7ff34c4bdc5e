"""The machine a benchmark ran on, for the figures it prints (`python benchmarks/x.py` puts this
folder on the import path)."""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """CPU model, core count and Python version."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
