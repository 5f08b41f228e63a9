"""Helpers every benchmark script shares: peak memory, the machine line, the load average.

Standard library only: ``opencv_peers.py`` imports it inside the OpenCV 4 virtual environment,
where classic_loc is not installed.
"""

import os
import platform

__all__ = ["peak_rss_mb", "cpu_model", "load_average", "machine"]


def peak_rss_mb():
    """This process's peak resident set size (VmHWM) in MB, or None where /proc is missing."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo), else what ``platform`` knows."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return cpu


def load_average():
    """The 1, 5 and 15 minute load averages, rounded, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine():
    """``"<cpu>, <n> cores, Python <version>"``."""
    return f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"
