"""Layout of the float64 parameter vector that every scheme hook receives (``DynamicsParams.params``).

A scheme parameter names its slot (``parameter(slot=...)``, base.py); values computed from several keys
come from ``SchemeParameters.derived``. Slots are shared vocabulary: a scheme reuses the ones whose meaning
it shares (eps, alpha, ...); a new kind of value takes a free slot (9..11).
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
N_PARAMS = 12
