"""A deployed coordinator's results.json states each bank's DP guarantee (issue 16), computed
from the run settings and the banks' reported training rows as the banks compute it."""

from __future__ import annotations

from federation.ml.training import bank_privacy
from federation.run.config import RunConfig
from server.results import coordinator_results
from server.run_state import FederatedResult


def test_deployed_results_carry_each_banks_privacy() -> None:
    cfg = RunConfig(banks=3, rounds=2, dp_epsilon=3.0)
    result = FederatedResult(run_id="r", train_rows={0: 7000, 2: 6500, 1: 7100})
    privacy = coordinator_results(cfg, result).privacy
    assert privacy is not None and [p.bank for p in privacy] == [0, 1, 2]
    assert privacy[1] == bank_privacy(cfg, 1, 7100)
    assert all(0 < p.epsilon <= 3.0 + 1e-9 for p in privacy)
    assert coordinator_results(RunConfig(banks=3), result).privacy is None
