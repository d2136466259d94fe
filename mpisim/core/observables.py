"""Observables recorded every ``run.log_every`` steps (global values, identical on all ranks)."""
import numpy as np

NAMES = ("activity", "active_pairs", "energy", "msd", "mean_displacement", "max_displacement", "speed_squared")
DTYPES = {"active_pairs": np.int64}


class ObservableLog:
    """Rows (step, values...) kept in memory until the writer flushes them."""

    def __init__(self):
        self.rows = []

    def append(self, step, values):
        self.rows.append((step, values))

    def take(self):
        rows, self.rows = self.rows, []
        return rows
