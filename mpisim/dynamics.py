"""The dynamics as the kernels see it: scheme id, potential id and the parameter vector."""
import math

import numpy as np

from .potentials import POTENTIALS
from .schemes import SCHEMES
from .schemes._params import BATCH, KICK, N_PARAMS, NOISE, RATE


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
