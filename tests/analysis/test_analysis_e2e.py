"""End to end: a tiny sweep simulated with mpisim, analysed, figures written."""
import numpy as np
import pytest

from analysis.cli import main
from analysis.synthetic import write_manifest


def test_simulated_sweep_to_figures(tmp_path):
    mpisim = pytest.importorskip("mpisim")
    if not hasattr(mpisim, "Simulation"):
        pytest.skip("mpisim.Simulation is not available yet")
    paths = []
    for n in (64, 216):
        for phi in (0.3, 0.45, 0.6):
            for seed in (1, 2):
                cfg = {"system": {"n": n, "phi": phi, "dim": 3, "seed": seed},
                       "dynamics": {"scheme": "sgd", "learning_rate": 0.2, "batch_fraction": 0.5},
                       "run": {"steps": 400, "log_every": 2}}
                p = tmp_path / f"sgd_n{n}_phi{phi}_s{seed}.h5"
                mpisim.Simulation.from_config(cfg, output=str(p)).run()
                paths.append(p)
    write_manifest(tmp_path / "manifest.tsv", paths)
    assert main(["info", str(tmp_path / "manifest.tsv")]) == 0
    assert main(["activity", str(tmp_path / "manifest.tsv"), "--window-fraction", "0.5"]) == 0
    out = tmp_path / "figs"
    # which figures are possible depends on how the tiny runs behave; all that can be drawn must be
    assert main(["figures", str(tmp_path / "manifest.tsv"), "-o", str(out), "--flatness-m", "4",
                 "--msd-step", "100", "--sofk-k-max", "4", "--which", "fig4b,fig5a,figS1,figS2"]) == 0
    for stem in ("fig4b", "fig5a", "figS1", "figS2"):
        for ext in ("png", "pdf", "csv"):
            assert (out / f"{stem}.{ext}").exists()
    assert main(["figures", str(tmp_path / "manifest.tsv"), "-o", str(out), "--flatness-m", "4",
                 "--msd-step", "100", "--sofk-k-max", "4"]) in (0, 2)
