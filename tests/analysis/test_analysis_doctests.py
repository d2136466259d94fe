"""The docstring examples of every analysis module, run as tests (STYLE.md point 10)."""
import doctest
import importlib

import pytest

MODULES = ["analysis.io", "analysis.synthetic", "analysis.activity", "analysis.fss", "analysis.critical",
           "analysis.msd", "analysis.flatness", "mpisim.core.energy", "analysis.structure_factor",
           "analysis.survival", "analysis.crystal"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0
    assert res.attempted > 0


def test_analysis_never_imports_mpi():
    """Neither mpi4py nor the engine's MPI layer is loaded by the analysis package."""
    import subprocess
    import sys
    code = ("import sys, analysis, analysis.cli, analysis.figures, analysis.flatness; "
            "sys.exit(1 if 'mpi4py' in sys.modules or 'mpisim.parallel' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
