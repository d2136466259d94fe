"""Up-front memory estimates: a run refuses a size that cannot fit in this machine's memory before it
allocates anything (docs/configuration.md, "Refused before the run")."""
import os

# Peak memory per particle of a run, measured: 381 bytes in 3d, 197 in 2d (sgd, phi = 0.6, growth of the
# peak RSS from N = 2e4 to 4e5 on one rank). The check uses the 3d figure, rounded up.
BYTES_PER_PARTICLE = 400
# S(k) per Fourier mode |n_a| <= m_a of the box (prod (2 m_a + 1) of them): the wave vectors (half of
# the modes, float64 and int64 [d] each), the complex mode grid and finufft's grid oversampled 2x per
# axis (2^d complex per mode): 168 bytes in 3d, 96 in 2d; the check uses 200.
BYTES_PER_MODE = 200


def machine_memory():
    """Physical memory of this machine in bytes (0 if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def too_large(n_bytes):
    """Whether ``n_bytes`` exceed this machine's physical memory (False if unknown)."""
    have = machine_memory()
    return bool(have) and n_bytes > have
