"""What every benchmark prints first: the machine, the software and how busy the machine was.

Imported by the scripts in bench/ (their folder is on sys.path when they run as scripts).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info(threads: str | int, device: str = "cpu") -> list[str]:
    """Lines naming the machine, CPU, torch threads, software, device, allocator and load."""
    import torch

    from rnntool.runtime import tune_allocator

    info = [
        f"machine: {platform.node()} {platform.system()} {platform.release()} {platform.machine()}",
        f"cpu: {cpu_name()}, {os.cpu_count()} logical cores, torch threads {threads}",
        f"python {platform.python_version()}, torch {torch.__version__}, device {device}",
        f"allocator: glibc malloc {'tuned by rnntool (rnntool/runtime.py)' if tune_allocator() else 'defaults'}",
    ]
    if str(device).startswith("cuda"):
        info.append(f"gpu: {torch.cuda.get_device_name(torch.device(device))}")
    try:
        info.append("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) +
                    " (1, 5, 15 min; figures are only comparable on a machine with nothing else running)")
    except OSError:
        pass
    return info
