"""Fixed-point arithmetic: the reason results do not depend on the order of a sum (docs/parallel.md).

Displacements are accumulated as int64 multiples of 2^-40 (``FIXED_SCALE``); global float sums (energy,
MSD, displacements) use a two-limb accumulator (integer part, 2^-32 units) whose MPI sum is exact.
"""
import numpy as np

from ._jit import inline

FIXED_SCALE = 2.0 ** 40       # displacement resolution 9.1e-13 diameters, range +/- 8.4e6
SUM_SCALE = 2.0 ** 32         # resolution of exact float sums
# |dx|^2 is summed as |dx|^2 SQ_SCALE: squared steps are small, and 2^-56 keeps them to float precision
# (sums up to 5e11 still fit). A power of two, so scaling and unscaling are exact.
SQ_SCALE = 2.0 ** 24


@inline
def exact_add(acc, slot, value):
    """Add value to the two-limb accumulator acc[slot] (integer part), acc[slot + 1] (2^-32 units)."""
    q = np.rint(value * SUM_SCALE)
    hi = np.floor(q / SUM_SCALE)
    acc[slot] += np.int64(hi)
    acc[slot + 1] += np.int64(q - hi * SUM_SCALE)


def exact_value(hi, lo):
    """The float nearest to hi + lo 2^-32 (Python integers: exact, correctly rounded)."""
    return (int(hi) * 2 ** 32 + int(lo)) / 2 ** 32
