"""FedAvg weight shares bound to the row counts the banks sealed (issue 12, part 4).

Each bank seals ``[(n_k/N) w_k, n_k/N]``: its weight share is its own claim. Two checks tie
the claims to the preprocessing step, where every bank sealed its row count ``n_k`` (the first
element of its statistics) and reported it beside the sealed vector:

1. the reported row counts add up to the opened statistics' total ``N`` (exact integers; a
   bank that reports another count than it sealed breaks the equality);
2. the opened weight mass of an update sum equals ``sum n_k / N`` over the banks in that sum,
   up to the codec's rounding (a bank that claims a larger share than its rows breaks it).

The coordinator sends both row sums (it holds the reported counts; banks never learn each
other's). Security assumption: the coordinator does not collude with the cheating bank (it
could send matching wrong sums); a bank that lies consistently about its row count in both
places is not caught (that needs proofs over its data). Under DP the statistics are noisy, so
check 1 is skipped and check 2 still holds.
"""

from __future__ import annotations

from protocols.errors import ProtocolError

SHARE_TOLERANCE_ROWS = 0.5
"""Rounding of the mass itself; the codec's quantisation is added per contribution."""


class WeightShareError(ProtocolError):
    """A bank claimed a FedAvg weight share that its sealed row count does not support."""


def check_reported_rows(reported_total: int, sealed_total: float) -> None:
    """Check 1: the reported row counts add up to the sealed statistics' total.

    Raises
    ------
    WeightShareError
        They differ: some bank reported another row count than it sealed.
    """
    if abs(float(reported_total) - float(sealed_total)) > SHARE_TOLERANCE_ROWS:
        raise WeightShareError(
            f"the banks' reported training rows add up to {reported_total}, but their sealed "
            f"statistics count {sealed_total:.0f}; a bank reported another row count than it "
            "sealed. The bank does not use this run's sums.")


def check_weight_mass(mass: float, *, total_rows: float, rows_in_sum: int, parties: int,
                      step: float) -> None:
    """Check 2: the opened weight mass matches the rows of the banks in the sum.

    Parameters
    ----------
    mass : float
        The last element of the opened update sum (``sum n_k/N`` if every bank is honest).
    total_rows : float
        ``N``, from the opened statistics.
    rows_in_sum : int
        The coordinator's sum of the reported row counts of the banks in this sum.
    parties, step : int, float
        Contributions and the codec's quantisation step (0 when exact).

    Raises
    ------
    WeightShareError
        The mass is off by more than the rounding allows.
    """
    tolerance = SHARE_TOLERANCE_ROWS + parties * step * total_rows
    if not abs(mass * total_rows - rows_in_sum) <= tolerance:
        raise WeightShareError(
            f"the combined update claims a weight mass of {mass * total_rows:.1f} rows, but "
            f"the banks in it sealed {rows_in_sum} training rows; a bank claimed a larger FedAvg "
            "weight share than its row count. The bank does not use this update.")
