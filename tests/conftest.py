"""Shared fixtures. The same suite runs serially and under mpirun (pytest-mpi: tests marked ``mpi`` run
only with --only-mpi/--with-mpi). A failure on any rank aborts the whole job after its report, so that no
rank waits forever for a partner that stopped."""
import os
import sys

import pytest


def pytest_addoption(parser):
    parser.addoption("--validate", action="store_true", default=False,
                     help="also run the long physics validations (marker 'validate')")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--validate"):
        return
    skip = pytest.mark.skip(reason="long validation: run with --validate")
    for item in items:
        if "validate" in item.keywords:
            item.add_marker(skip)


def _mpi_size():
    try:
        from mpi4py import MPI
    except ImportError:
        return 1
    return MPI.COMM_WORLD.size


def pytest_sessionfinish(session, exitstatus):
    session.config._mpisim_exitstatus = exitstatus


def pytest_unconfigure(config):
    # After the report is printed: a rank whose tests failed takes the whole job down, so that ranks
    # still waiting in a collective call of the failed test do not hang.
    exitstatus = getattr(config, "_mpisim_exitstatus", 0)
    if _mpi_size() > 1 and exitstatus not in (0, 5):
        from mpi4py import MPI
        sys.stdout.flush()
        sys.stderr.write(f"rank {MPI.COMM_WORLD.rank}: tests failed (exit {exitstatus}); aborting the job\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(int(exitstatus))


@pytest.fixture
def serial_comm():
    """A one-rank communicator: COMM_SELF under MPI, else the serial stand-in."""
    try:
        from mpi4py import MPI
        return MPI.COMM_SELF
    except ImportError:
        from mpisim.parallel.comm import SerialComm
        return SerialComm()


def clean_env():
    """Environment for a child mpirun/mpisim: without the variables that this (possibly MPI-initialised)
    process inherited from Open MPI, which would make the child join the wrong job."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OMPI_", "PMIX_", "PMI_", "OPAL_", "ORTE_", "PRTE_", "HYDRA_"))}


def mpirun_command(n):
    """mpirun prefix for n ranks: oversubscribed (2 cores here), and allowed as root."""
    import shutil
    exe = shutil.which("mpirun")
    if exe is None:
        pytest.skip("no mpirun")
    flags = ["--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--allow-run-as-root")
    return [exe, *flags, "-n", str(n)]
