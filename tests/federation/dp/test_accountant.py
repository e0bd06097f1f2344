"""The privacy accountant: Opacus and dp-accounting agree, calibration meets the budget, an
unmeetable epsilon is refused in one line naming the setting."""

from __future__ import annotations

import math

import pytest

from federation.errors import ConfigError
from federation.ml.dp.accountant import (
    Mechanism,
    calibrate,
    epsilon_dp_accounting,
    epsilon_opacus,
)
from federation.ml.dp.budget import (
    STATS_RELEASES,
    UnsupportableBudgetError,
    check_budget,
    default_delta,
    histogram_noise,
    plan_training,
)


@pytest.mark.parametrize(("z", "q", "steps", "delta"), [
    (1.3, 128 / 4200, 500, 1e-5),  # the UCI bank of the benchmark at epsilon about 3
    (0.8, 0.01, 2000, 1e-6),
    (5.0, 0.05, 100, 1e-5),
    (3.0, 1.0, 10, 1e-5),  # plain Gaussian releases (score histograms)
])
def test_opacus_and_dp_accounting_agree_within_5_percent(z: float, q: float, steps: int,
                                                         delta: float) -> None:
    mechanisms = (Mechanism(z, q, steps), Mechanism(20.0, 1.0, STATS_RELEASES))
    ours, google = epsilon_opacus(mechanisms, delta), epsilon_dp_accounting(mechanisms, delta)
    assert ours > 0 and google > 0
    assert abs(ours - google) <= 0.05 * google


def test_more_noise_or_fewer_steps_spend_less() -> None:
    base = epsilon_opacus((Mechanism(1.0, 0.02, 400),), 1e-5)
    assert epsilon_opacus((Mechanism(2.0, 0.02, 400),), 1e-5) < base
    assert epsilon_opacus((Mechanism(1.0, 0.02, 100),), 1e-5) < base
    assert epsilon_opacus((Mechanism(1.0, 0.02, 0),), 1e-5) == 0.0


@pytest.mark.parametrize("epsilon", [0.5, 3.0, 8.0])
def test_the_plan_meets_the_budget_tightly(epsilon: float) -> None:
    plan = plan_training(epsilon=epsilon, delta=1e-5, clip=1.0, rows=4200, batch_size=128,
                         steps=500)
    assert plan.sampling_rate == pytest.approx(128 / 4200)
    assert plan.steps == 500 and plan.delta == 1e-5 and plan.accountant == "rdp"
    spent = epsilon_opacus(plan.mechanisms(), plan.delta)
    assert spent == pytest.approx(plan.epsilon)
    assert 0.9 * epsilon <= spent <= epsilon  # within budget, and not wastefully below it
    # a noise multiplier 5 % smaller would overspend: the calibration found the edge
    less = plan.mechanisms()[0].noise_multiplier * 0.95
    assert epsilon_opacus((Mechanism(less, plan.sampling_rate, 500),
                           *plan.mechanisms()[1:]), plan.delta) > epsilon
    assert epsilon_dp_accounting(plan.mechanisms(), plan.delta) <= epsilon * 1.05


def test_the_default_delta_is_a_tenth_of_one_over_the_rows() -> None:
    plan = plan_training(epsilon=3.0, delta=0.0, clip=1.0, rows=2000, batch_size=64,
                         steps=100)
    assert plan.delta == default_delta(2000) == 1 / 20_000


def test_an_unmeetable_epsilon_is_one_line_naming_the_setting() -> None:
    with pytest.raises(UnsupportableBudgetError) as info:  # 10 rounds of 50 steps
        plan_training(epsilon=0.01, delta=1e-5, clip=1.0, rows=4200, batch_size=128,
                      steps=500)
    message = str(info.value)
    assert "\n" not in message and "'dp-epsilon'" in message and "0.01" in message
    assert isinstance(info.value, ConfigError)


def test_histogram_noise_meets_the_budget_over_all_releases() -> None:
    z = histogram_noise(epsilon=3.0, delta=1e-5, releases=10)
    assert epsilon_opacus((Mechanism(z, 1.0, 10),), 1e-5) <= 3.0
    assert epsilon_opacus((Mechanism(z * 0.95, 1.0, 10),), 1e-5) > 3.0
    assert histogram_noise(epsilon=3.0, delta=1e-5, releases=1) < z


def test_calibrate_returns_none_beyond_the_most_noise() -> None:
    assert calibrate(lambda z: (Mechanism(z, 1.0, 1000),), epsilon=1e-4, delta=1e-5,
                     most=10.0) is None
    with pytest.raises(ValueError, match="finite epsilon"):
        calibrate(lambda z: (Mechanism(z, 1.0, 1),), epsilon=math.inf, delta=1e-5)


@pytest.mark.parametrize(("epsilon", "delta", "clip", "setting"), [
    (-1.0, 0.0, 1.0, "dp-epsilon"), (math.nan, 0.0, 1.0, "dp-epsilon"),
    (math.inf, 0.0, 1.0, "dp-epsilon"), (1.0, 1.0, 1.0, "dp-delta"),
    (1.0, -0.1, 1.0, "dp-delta"), (1.0, 0.0, 0.0, "dp-clip"), (1.0, 0.0, math.nan, "dp-clip"),
])
def test_bad_settings_name_the_setting(epsilon: float, delta: float, clip: float,
                                       setting: str) -> None:
    with pytest.raises(ConfigError, match=f"'{setting}'"):
        check_budget(epsilon, delta, clip)
    check_budget(0.0, 0.0, 1.0)  # off
