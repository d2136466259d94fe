"""Serial analysis of mpisim runs: the measurements and figures of Zhang & Martiniani (paper 000).

Never imports MPI. Modules, in dependency order:

* :mod:`analysis.errors`: user-mistake exceptions (the CLI turns them into exit status 2)
* :mod:`analysis.io`: run files, manifests, grouping by parameters
* :mod:`analysis.activity`: f_a(k), f_inf, tau_r, averages over seeds
* :mod:`analysis.fss`: pyfssa-compatible scaledata / quality / autoscale, Manna exponents, collapses
* :mod:`analysis.critical`: phi_c per step size and its eps -> 0 extrapolation
* :mod:`analysis.survival`: phi_c from the absorption probability at a time scaled with N
* :mod:`analysis.msd`: MSD(k) and the diffusion exponent c
* :mod:`analysis.flatness`: Delta V / U_0 under Gaussian perturbations (with :mod:`analysis._energy`)
* :mod:`analysis.structure_factor`: S(k) by direct summation or NUFFT, exponent alpha
* :mod:`analysis.figures`, :mod:`analysis.cli`: figures and the ``mpisim-analysis`` command

See docs/analysis.md.
"""
from .activity import ActivityTable, SteadyState
from .critical import CriticalPoints, extrapolate
from .errors import AnalysisError, CollapseError, NotComputedError, RunFileError, WindowError
from .flatness import Flatness
from .fss import MANNA, Collapse, autoscale, fit_critical_point, quality, scaledata
from .io import Run, group_runs, load_run, load_runs, read_manifest
from .msd import MSD, DiffusionExponent
from .structure_factor import StructureFactor, sofk_sums
from .survival import AbsorptionProbability

__all__ = [
    "ActivityTable", "SteadyState", "CriticalPoints", "extrapolate", "AnalysisError", "CollapseError",
    "NotComputedError", "RunFileError", "WindowError", "Flatness", "MANNA", "Collapse", "autoscale",
    "fit_critical_point", "quality", "scaledata", "Run", "group_runs", "load_run", "load_runs",
    "read_manifest", "MSD", "DiffusionExponent", "StructureFactor", "sofk_sums", "AbsorptionProbability",
]
