"""Layout of the float64 parameter vector that every scheme hook receives (``DynamicsParams.params``).

A scheme parameter names its slot (``parameter(slot=...)``, base.py); values computed from several keys
come from ``SchemeParameters.derived``. Slots are shared vocabulary: a scheme reuses the ones whose meaning
it shares (eps, alpha, ...); a new kind of value takes a free slot (15).
"""
KICK = 0          # eps, BRO kick size (units of the diameter)
RATE = 1          # alpha, learning rate
BATCH = 2         # b_f, batch fraction
NOISE = 3         # sqrt(b_f - b_f^2), amplitude of the SGD/RCD selection noise
MOMENTUM = 4      # beta, heavy-ball momentum of sgd/rcd/gd (0 = off); read by apply_step for every scheme
SIGMA = 5         # per-step noise displacement: sigma (pgd/spgd), sqrt(2 alpha T) (langevin)
MEMORY_NEW = 6    # a: weight of this step's draw in the PGD noise, a^2 + b^2 = 1
MEMORY_OLD = 7    # b: weight of the remembered draw, a b = temporal correlation
SPATIAL = 8       # 0: independent particle noise, -1: reciprocal pair noise
DIM = 9           # d, the dimension (set by DynamicsParams): hooks that draw random directions (RO)
PAIR_CORR = 10    # c, the pair-noise correlation (``pair_correlation``, base.PairCorrelation)
# Values derived from c (docs/algorithms.md, "Pair-noise correlation"); a scheme uses one group:
RHO = 11          # BRO/RO kick sizes: rho = 2 sin(pi c / 6), the Gaussian correlation of the copula
RHO_C = 12        #   sqrt(1 - rho^2)
DIR_RHO = 13      # RO directions: the correlation of the two Gaussian direction vectors
DIR_RHO_C = 14    #   sqrt(1 - DIR_RHO^2)
SA_C = 11         # correlated stochastic approximation: sqrt(1 - c^2) (c itself is PAIR_CORR)
P_BOTH = 11       # correlated SGD: P(theta_lo = theta_hi = 1)
P_LO = 12         #   P(theta_lo = 1) (cumulative thresholds on one uniform: both, only lo, only hi)
P_LO_HI = 13      #   P(theta_lo = 1) + P(theta_lo = 0, theta_hi = 1)
N_PARAMS = 16
