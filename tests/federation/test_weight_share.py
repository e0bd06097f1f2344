"""FedAvg weight shares are bound to the sealed row counts (issue 12, part 4): a bank that
claims most of the weight, or reports another row count than it sealed, is caught by every
honest bank when it opens the sums."""

from __future__ import annotations

import numpy as np
import pytest

from federation.steps.secure_sum import KIND_WEIGHTS, WEIGHT_BITS, WEIGHT_CLIP, PlainSum
from federation.steps.weight_share import (
    WeightShareError,
    check_reported_rows,
    check_weight_mass,
)

ROWS = {0: 700, 1: 650, 2: 720}
N = sum(ROWS.values())
STEP = 2 * WEIGHT_CLIP / 2**WEIGHT_BITS


def _mass(shares: dict[int, float]) -> float:
    scheme = PlainSum()
    sealed = [scheme.seal(np.array([0.1, -0.2, share]), kind=KIND_WEIGHTS, run_id="r", round=1)
              for share in shares.values()]
    total = scheme.combine(sealed, kind=KIND_WEIGHTS, length=None, run_id="r", round=1)
    return float(scheme.open(total, kind=KIND_WEIGHTS, run_id="r", round=1)[-1])


def test_honest_shares_pass_with_and_without_a_dropout() -> None:
    honest = {b: n / N for b, n in ROWS.items()}
    check_reported_rows(N, float(N))
    check_weight_mass(_mass(honest), total_rows=N, rows_in_sum=N, parties=3, step=STEP)
    survivors = {b: s for b, s in honest.items() if b != 1}
    check_weight_mass(_mass(survivors), total_rows=N, rows_in_sum=N - ROWS[1], parties=2,
                      step=STEP)


def test_a_bank_claiming_most_of_the_weight_is_caught() -> None:
    cheat = {b: n / N for b, n in ROWS.items()}
    cheat[2] = 24.0  # 96 % of the mean: its share dwarfs the others'
    with pytest.raises(WeightShareError, match="larger FedAvg weight share"):
        check_weight_mass(_mass(cheat), total_rows=N, rows_in_sum=N, parties=3, step=STEP)
    subtle = {b: n / N for b, n in ROWS.items()}
    subtle[2] += 5 / N  # five rows more than it has
    with pytest.raises(WeightShareError):
        check_weight_mass(_mass(subtle), total_rows=N, rows_in_sum=N, parties=3, step=STEP)


def test_a_reported_count_that_differs_from_the_sealed_one_is_caught() -> None:
    with pytest.raises(WeightShareError, match="reported another row count"):
        check_reported_rows(N + 1, float(N))
