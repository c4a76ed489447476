"""Progress reporting for long loops: a tqdm bar when tqdm is installed, plain lines otherwise."""
import sys
import time

__all__ = ["make_progress"]


class _Lines:
    """About ten plain lines over the run, on stderr."""

    def __init__(self, total, desc, stream):
        self.total, self.desc, self.stream = max(int(total), 1), desc, stream
        self.done, self.next_mark, self.t0 = 0, 0, time.perf_counter()

    def update(self, n=1):
        self.done += n
        if self.done >= self.next_mark or self.done == self.total:
            pct = 100.0 * self.done / self.total
            el = time.perf_counter() - self.t0
            print(f"{self.desc}: {self.done}/{self.total} ({pct:3.0f}%), {el:.1f} s",
                  file=self.stream, flush=True)
            self.next_mark = self.done + max(self.total // 10, 1)

    def close(self):
        pass


class _Silent:
    def update(self, n=1):
        pass

    def close(self):
        pass


def make_progress(progress, total, desc):
    """``progress``: False/None (silent), True (a tqdm bar if tqdm is installed and stderr is a
    terminal, else plain lines), 'lines'
    (always plain lines) or an object with ``update(n)`` and ``close()`` (used as is)."""
    if progress is None or progress is False:
        return _Silent()
    if hasattr(progress, "update"):
        return progress
    if progress is True:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Lines(total, desc, sys.stderr)
        if not sys.stderr.isatty():  # a bar redrawn into a log file is noise: plain lines
            return _Lines(total, desc, sys.stderr)
        return tqdm(total=total, desc=desc, leave=False)
    if progress == "lines":
        return _Lines(total, desc, sys.stderr)
    raise ValueError(f"progress must be True, False, None, 'lines' or an object with update() and "
                     f"close(); got {progress!r}.")
