"""Privacy accounting: the epsilon of a composition of (subsampled) Gaussian mechanisms.

Protocol step: before a bank trains or releases anything under differential privacy, the noise
of every mechanism it will run is fixed from public settings, so that the composition meets
the run's (epsilon, delta). Each mechanism here is a Gaussian mechanism on a query of L2
sensitivity 1 (after clipping or normalisation), Poisson-subsampled at rate ``q`` and repeated
``steps`` times: :class:`Mechanism` ``(noise_multiplier, q, steps)``; ``q = 1`` is the plain
Gaussian mechanism (one release of a sum).

Accounting: Renyi DP (Mironov 2017; the subsampled Gaussian of Mironov, Talwar and Zhang
2019), composed by adding the RDP curves and converted to (epsilon, delta) with the bound of
Balle et al. 2020, over the orders :data:`ORDERS`. :func:`epsilon_opacus` is Opacus' RDP
accountant, the one that chooses the noise; :func:`epsilon_dp_accounting` is Google's
``dp-accounting`` library on the same events, the cross-check (``tests`` ask them to agree
within 5 %). Neighbouring data sets differ by adding or removing one borrower's row.

Security assumption: the accounting is only as good as the mechanism's implementation (the
noise is drawn from a secret seed, the sample is secret, every step adds noise even when its
batch is empty); it does not cover floating-point attacks on the Gaussian sampler.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ACCOUNTANT = "rdp"
"""The name written to ``results.json`` (``privacy.accountant``)."""
ORDERS: tuple[float, ...] = (
    tuple(1 + x / 10.0 for x in range(1, 20)) + tuple(3 + x / 2.0 for x in range(0, 18))
    + tuple(float(a) for a in range(12, 64)) + (80.0, 96.0, 128.0, 192.0, 256.0, 384.0, 512.0)
)
"""Renyi orders searched for the tightest epsilon (to 512, beyond Opacus' default 63, for
small epsilons, which need large orders)."""
MAX_NOISE_MULTIPLIER = 50.0
"""DP-SGD's calibration gives up above this: the budget cannot be met with usable noise."""
LEAST_NOISE_MULTIPLIER = 0.05
"""The calibration's floor (an epsilon so large that less noise would do is met with this)."""
MAX_RELEASE_NOISE_MULTIPLIER = 10_000.0
"""The one-off releases (statistics, histograms) may take far more noise than SGD steps."""


@dataclass(frozen=True, slots=True)
class Mechanism:
    """``steps`` Gaussian steps of noise multiplier ``noise_multiplier`` on a Poisson sample
    of rate ``sampling_rate`` (1 = every row: a plain Gaussian release)."""

    noise_multiplier: float
    sampling_rate: float
    steps: int

    def __post_init__(self) -> None:
        if not self.noise_multiplier > 0:
            raise ValueError(f"noise_multiplier must be positive (got {self.noise_multiplier})")
        if not 0 < self.sampling_rate <= 1:
            raise ValueError(f"sampling_rate must be in (0, 1] (got {self.sampling_rate})")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0 (got {self.steps})")


def epsilon_opacus(mechanisms: Sequence[Mechanism], delta: float) -> float:
    """Epsilon of the composition at ``delta`` by Opacus' RDP accountant."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(m.noise_multiplier, m.sampling_rate, m.steps)
                          for m in mechanisms if m.steps]
    if not accountant.history:
        return 0.0
    with warnings.catch_warnings():  # "optimal order is the largest": the bound stays valid
        warnings.simplefilter("ignore", UserWarning)
        return float(accountant.get_epsilon(delta, alphas=list(ORDERS)))


def epsilon_dp_accounting(mechanisms: Sequence[Mechanism], delta: float) -> float:
    """Epsilon of the same composition by Google's ``dp-accounting`` (RDP), the cross-check."""
    import dp_accounting

    accountant = dp_accounting.rdp.RdpAccountant(orders=list(ORDERS))
    for m in mechanisms:
        if not m.steps:
            continue
        event: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(m.noise_multiplier)
        if m.sampling_rate < 1:
            event = dp_accounting.PoissonSampledDpEvent(m.sampling_rate, event)
        accountant.compose(event, m.steps)
    return float(accountant.get_epsilon(delta))


def calibrate(make: Callable[[float], Sequence[Mechanism]], *, epsilon: float, delta: float,
              tolerance: float = 0.01, most: float = MAX_NOISE_MULTIPLIER) -> float | None:
    """The smallest noise multiplier ``z`` (within ``tolerance`` relative) such that the
    mechanisms ``make(z)`` meet (epsilon, delta); ``None`` when even ``most`` does not.
    Epsilon falls as ``z`` grows, so bisection works.
    """
    if not (math.isfinite(epsilon) and epsilon > 0 and 0 < delta < 1):
        raise ValueError(f"need a finite epsilon > 0 and delta in (0, 1) (got {epsilon}, {delta})")

    def meets(z: float) -> bool:
        return epsilon_opacus(make(z), delta) <= epsilon

    if not meets(most):
        return None
    low, high = LEAST_NOISE_MULTIPLIER, most  # bisection in log space: ratios matter
    if meets(low):
        return low
    while high > low * (1 + tolerance):
        mid = math.sqrt(low * high)
        if meets(mid):
            high = mid
        else:
            low = mid
    return high
