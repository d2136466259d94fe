"""CPU time per label of methods wrapped in place: the benchmarks' breakdown of a step (launch/bench_sparse.py,
launch/bench_step_parts.py); never used by the engine."""
import time


class CpuTimers:
    """``wrap(obj, name, label)`` replaces ``obj.name`` by a wrapper adding its CPU time (``time.process_time``)
    to ``spent[label]`` and one to ``calls[label]``; returns the original method."""

    def __init__(self):
        self.spent, self.calls = {}, {}

    def wrap(self, obj, name, label):
        f = getattr(obj, name)

        def wrapper(*args, **kw):
            c0 = time.process_time()
            try:
                return f(*args, **kw)
            finally:
                self.spent[label] = self.spent.get(label, 0.0) + time.process_time() - c0
                self.calls[label] = self.calls.get(label, 0) + 1
        setattr(obj, name, wrapper)
        return f
