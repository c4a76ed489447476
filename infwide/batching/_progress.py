"""Progress of a tiled computation: tiles done, rate, time left.

On a terminal: a tqdm bar when tqdm is installed (``pip install "infwide[progress]"``),
otherwise one line rewritten in place. Elsewhere (a log file, a pipe, CI): plain log lines,
at most one every ``interval`` seconds, and one at the end.
"""
import sys
import time

__all__ = ["Progress", "make_progress"]


def _fmt_time(s):
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """Counts finished tiles; the ``initial`` ones (reused from a store) are not in the rate."""

    def __init__(self, total, initial=0, stream=None, interval=5.0, use_tqdm=None,
                 desc="infwide.batch"):
        self.total, self.done, self.computed = int(total), int(initial), 0
        self.stream = sys.stderr if stream is None else stream
        self.interval, self.desc = float(interval), desc
        self.t0 = time.monotonic()
        self._last = -float("inf")
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = "log"
        self._bar = None
        if tty:
            self.mode = "line"
            if use_tqdm is not False:
                self._bar = _tqdm_bar(total, self.done, self.stream, desc)
                if self._bar is not None:
                    self.mode = "tqdm"

    def rate(self):
        dt = time.monotonic() - self.t0
        return self.computed / dt if dt > 0 else 0.0

    def eta(self):
        r = self.rate()
        return (self.total - self.done) / r if r > 0 else float("nan")

    def status(self):
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.desc}: {self.done}/{self.total} tiles ({pct:.0f}%), "
                f"{self.rate():.2f} tiles/s, {_fmt_time(self.eta())} left")

    def update(self, n=1):
        self.done += n
        self.computed += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            self._emit()

    def _emit(self):
        if self.mode == "line":
            self.stream.write("\r" + self.status() + "   ")
        else:
            self.stream.write(self.status() + "\n")
        self.stream.flush()

    def close(self):
        if self._bar is not None:
            self._bar.close()
            return
        if self.mode == "line":
            self.stream.write("\n")
            self.stream.flush()


def _tqdm_bar(total, initial, stream, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, file=stream, desc=desc, unit="tile",
                dynamic_ncols=True)


def make_progress(progress, total, initial=0):
    """``progress``: None/False (silent), True (stderr), or a text stream to report to."""
    if progress is None or progress is False:
        return None
    if progress is True:
        return Progress(total, initial)
    if hasattr(progress, "write"):
        return Progress(total, initial, stream=progress)
    raise TypeError(f"batch: `progress` must be None, True/False or a text stream, got "
                    f"{type(progress).__name__}.")
