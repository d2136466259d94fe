"""Progress of long loops over items (frames, runs): ``mpisim sofk`` over many frames and the analysis
package's per-run measurements. MPI-free; tqdm is optional.

Where it shows (``style="auto"``): a tqdm bar in a Jupyter notebook or on a terminal (when tqdm is
installed), else plain lines on ``out`` (stderr), one every ``seconds`` (logs, batch jobs, pipes). The
first item is timed apart, like the run's own progress (mpisim/operations.py, ``Progress``): it holds the
start-up and numba's compilation (or cache loading) of the kernels, so the rate and the ETA count only
the items after it, and its time is reported on its own line. A loop shorter than ``seconds`` prints
nothing in the lines style.

Warnings on the command lines (``mpisim``, ``mpisim-analysis``) are one line each, like their errors:
:func:`one_line_warnings`.
"""
import contextlib
import math
import sys
import time
import warnings


def in_notebook():
    """Whether this process is a Jupyter kernel (where a tqdm bar replaces progress lines)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def hms(seconds):
    """h:mm:ss of a duration in seconds ("?" if it is not finite)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class ItemProgress:
    """Progress of a loop of ``total`` items named ``what`` (e.g. "S(k) frames").

    Call :meth:`done` after each item and :meth:`close` at the end (or iterate with :func:`progress`).
    enabled: False on every MPI rank but one (nothing is shown); style: "auto", "lines" or "tqdm";
    seconds: the interval between lines; out: the stream (default stderr); clock: for tests.
    """

    def __init__(self, total, what, *, seconds=10.0, style="auto", out=None, enabled=True,
                 clock=time.perf_counter):
        if style not in ("auto", "lines", "tqdm"):
            raise ValueError(f"progress style must be 'auto', 'lines' or 'tqdm', got {style!r}")
        self.total, self.what, self.seconds = int(total), str(what), float(seconds)
        self.out, self.enabled, self.clock = out, bool(enabled), clock
        self.count = 0
        self.t0 = self.t_last = clock()
        self.t1 = None            # when the first item was done
        self.bar = None
        self.shown = False        # whether a line was printed
        tqdm = _tqdm() if enabled and style != "lines" else None
        stream = self._stream()
        tty = hasattr(stream, "isatty") and stream.isatty()
        if tqdm is not None and (style == "tqdm" or in_notebook() or tty):
            self.bar = tqdm(total=self.total, desc=self.what, unit="item", file=out)

    def _stream(self):
        return self.out if self.out is not None else sys.stderr

    def _emit(self, text):
        print(text, file=self._stream(), flush=True)
        self.shown = True

    def rate(self, now):
        """Items per second after the first item (nan before two items are done)."""
        if self.t1 is None or self.count <= 1 or now <= self.t1:
            return math.nan
        return (self.count - 1) / (now - self.t1)

    def done(self, n=1):
        """``n`` more items are done."""
        if not self.enabled:
            return
        self.count += n
        now = self.clock()
        if self.bar is not None:
            self.bar.update(n)
            if self.t1 is None:
                self.t1 = now
                self.bar.set_postfix_str(f"first {now - self.t0:.1f} s (compilation), not in the rate")
            return
        if self.t1 is None:
            self.t1 = self.t_last = now
            if now - self.t0 >= self.seconds:
                self._emit(f"{self.what}: the first took {now - self.t0:.1f} s (start-up and kernel "
                           f"compilation; not counted in the rate and ETA)")
            return
        if now - self.t_last < self.seconds or self.count >= self.total:
            return
        self.t_last = now
        self._emit(self.line(now))

    def line(self, now):
        rate = self.rate(now)
        eta = (self.total - self.count) / rate if rate > 0 else math.nan
        return f"{self.what}: {self.count}/{self.total}  {rate:.3g}/s  ETA {hms(eta)}"

    def close(self):
        """End the report: closes the bar, or prints a summary line if any line was printed or the loop
        took at least ``seconds``."""
        if not self.enabled:
            return
        now = self.clock()
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            return
        if self.shown or now - self.t0 >= self.seconds:
            first = f"the first {now - self.t0 if self.t1 is None else self.t1 - self.t0:.1f} s"
            rate = self.rate(now)
            after = f", then {rate:.3g}/s" if math.isfinite(rate) else ""
            self._emit(f"{self.what}: {self.count}/{self.total} done in {now - self.t0:.1f} s ({first}{after})")


def progress(items, what, total=None, **options):
    """Iterate over ``items`` with an :class:`ItemProgress` (options as its keywords)."""
    items = list(items) if total is None and not hasattr(items, "__len__") else items
    report = ItemProgress(len(items) if total is None else total, what, **options)
    try:
        for item in items:
            yield item
            report.done()
    finally:
        report.close()


@contextlib.contextmanager
def one_line_warnings(prog, action=None):
    """Within: every warning shown as one line ``PROG: warning: MESSAGE`` on stderr (the category's name
    before the message unless it is a UserWarning), not Python's file, line and source; ``action``
    (e.g. "default": once per place, deprecations too) replaces Python's filters when given."""
    def show(message, category, filename, lineno, file=None, line=None):
        kind = "" if category is UserWarning else f"{category.__name__}: "
        print(f"{prog}: warning: {kind}{message}", file=file or sys.stderr)

    with warnings.catch_warnings():
        if action is not None:
            warnings.simplefilter(action)
        warnings.showwarning = show
        yield
