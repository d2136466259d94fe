"""The dynamics as the kernels see it: scheme id, potential id and the parameter vector."""
import math

import numpy as np

from .potentials import POTENTIALS
from .schemes import CORRELATED_NOISE_SCHEMES, SCHEMES
from .schemes._params import (BATCH, KICK, MEMORY_NEW, MEMORY_OLD, MOMENTUM, N_PARAMS, NOISE, RATE, SIGMA,
                              SPATIAL)


class DynamicsParams:
    """Compiled-kernel view of a validated ``config.Dynamics``."""

    def __init__(self, dynamics):
        spec = SCHEMES[dynamics.scheme]
        self.scheme = spec.id
        self.kind = spec.kind
        self.potential = POTENTIALS[dynamics.potential]
        self.params = np.zeros(N_PARAMS)
        self.params[KICK] = dynamics.kick_size
        self.params[RATE] = dynamics.learning_rate
        self.params[BATCH] = dynamics.batch_fraction
        b = dynamics.batch_fraction
        self.params[NOISE] = math.sqrt(max(b - b * b, 0.0))
        self.n_aux = 0
        # Momentum, pgd/spgd and langevin (docs/algorithms.md): the kernel apply_step and, for
        # reciprocal noise, noise_pair_pass, which reads the ghosts' aux.
        self.params[MOMENTUM] = dynamics.momentum
        self.momentum = dynamics.momentum > 0
        self.correlated_noise = dynamics.scheme in CORRELATED_NOISE_SCHEMES
        self.always_moving = dynamics.scheme == "langevin"    # noise on every particle: never absorbed
        self.reciprocal_noise = self.correlated_noise and dynamics.spatial_correlation == "reciprocal"
        if self.correlated_noise:
            c = dynamics.temporal_correlation
            self.params[SIGMA] = dynamics.noise_amplitude
            # a^2 + b^2 = 1 (unit variance), a b = c (lag-one correlation); c = -1/2: a = -b = 1/sqrt(2).
            self.params[MEMORY_NEW] = 0.5 * (math.sqrt(1 + 2 * c) + math.sqrt(1 - 2 * c))
            self.params[MEMORY_OLD] = 0.5 * (math.sqrt(1 + 2 * c) - math.sqrt(1 - 2 * c))
            self.params[SPATIAL] = -1.0 if self.reciprocal_noise else 0.0
        if dynamics.scheme == "langevin":
            self.params[SIGMA] = math.sqrt(2.0 * dynamics.learning_rate * dynamics.temperature)
        if self.momentum or self.correlated_noise:
            self.n_aux = 3          # velocity or noise memory, one column per axis
