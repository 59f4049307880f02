"""What every benchmark prints first: the machine its figures come from."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def has_avx512_bf16() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and "avx512_bf16" in cpuinfo.read_text()


def describe() -> str:
    """CPU, cores, bf16 support, torch version and threads, and the load average now."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{cpu_model()}; {os.cpu_count()} logical cores; avx512_bf16 {has_avx512_bf16()}; GPU {gpu}; "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads; load average {load}"
    )
