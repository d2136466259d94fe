"""Layout of the float64 parameter vector that every scheme kernel receives (see ``Dynamics.params``)."""
KICK = 0          # eps, BRO kick size (units of the diameter)
RATE = 1          # alpha, learning rate
BATCH = 2         # b_f, batch fraction
NOISE = 3         # sqrt(b_f - b_f^2), amplitude of the SGD/RCD selection noise
N_PARAMS = 8
