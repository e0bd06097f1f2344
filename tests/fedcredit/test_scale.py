"""Scale work (issue 14) changes no result: the same seed gives the same federated model.

The pinned weights are those of the code before the per-process caches of issue 14 (commit
53283ac, ``run_federation`` of a 3-bank, 2-round plain LR run on the embedded UCI set, seed 7);
the run goes through Flower's simulation engine, so every cache sits where it does in a real
simulation (Ray actors hosting several banks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federation.run.config import RunConfig

PINNED_WEIGHTS = [
    -0.11087139273946808, -0.06965193674771643, -0.09243437624623219, -0.07936635052189037,
    0.0678848276330743, 0.6493573346936427, 0.07945225687836308, 0.09163799114269357,
    -0.04819131941030341, 0.09004952238360925, 0.05891551739322703, -0.03892371473292974,
    -0.0200264600664428, -0.09528946046265072, 0.019163387268161747, -0.032140100397880074,
    0.09283041211767604, -0.1644972848934806, -0.10937129839165505, -0.09172848694197884,
    -0.06863410651550146, -0.07867241446429152, -0.08145559202336106, -1.484677771073084,
]
PINNED_AUC = [0.7209490072998632, 0.7217227846324296]


@pytest.mark.slow
def test_the_same_seed_gives_the_model_it_gave_before_the_scale_work(tmp_path: Path) -> None:
    from fedcredit.simulation.horizontal import run_federation

    result = run_federation(RunConfig(banks=3, rounds=2, seed=7, out=str(tmp_path / "run")))
    weights = np.concatenate([np.ravel(w) for w in result.weights])
    np.testing.assert_allclose(weights, PINNED_WEIGHTS, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose([h.auc for h in result.history], PINNED_AUC, rtol=1e-12)
