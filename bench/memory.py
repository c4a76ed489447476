"""Peak resident memory (and per-thread CPU time) of this process, from /proc (Linux).

``getrusage(RUSAGE_SELF).ru_maxrss`` is not used: Linux carries it across ``execve``, so a
worker started from a large parent would report the parent's peak. ``VmHWM`` in
/proc/self/status belongs to the current address space; writing ``5`` to
/proc/self/clear_refs resets it (Linux >= 4.0), which gives the peak of the timed calls alone.
"""
import resource

__all__ = ["peak_mb", "current_mb", "reset_peak", "thread_cpu"]


def _status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_mb():
    """Peak resident set (MiB) of this process since start or the last ``reset_peak``."""
    v = _status("VmHWM")
    return v if v is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_mb():
    return _status("VmRSS")


def reset_peak():
    """Reset the peak to the current resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def thread_cpu():
    """CPU seconds (user + system) of each thread of this process, by thread id (Linux):
    how evenly a parallel region spread its work, whatever else shares the cores."""
    import os
    out = {}
    try:
        tick = os.sysconf("SC_CLK_TCK")
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[tid] = (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        pass
    return out
