"""The MPI-free core: box, fixed-point sums, RNG, potentials, neighbour structures, energy, S(k) kernels,
schemes, step kernels and particle state. Imports neither mpi4py nor anything above it (tests/test_layers.py)."""
