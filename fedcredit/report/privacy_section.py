"""The report's differential-privacy section: each bank's guarantee and what it cost in AUC.

A ``--dp-epsilon`` run records every bank's guarantee in ``results.privacy``
(:class:`~federation.run.results.BankPrivacy`: epsilon at delta, by its accountant, and the
mechanism's noise, clip, sampling rate and steps). The cost is read against the non-private
reference the same results hold: the centralised (pooled) model, trained on the same rows
without noise. That difference mixes two costs, federating and the noise; the simulation
does not train a non-private federated model beside the private one, so the page says so
rather than calling all of it the price of privacy.

Security: the section shows what the results file holds; nothing here reads a bank's rows.
"""

from __future__ import annotations

from html import escape

from fedcredit.report import names
from fedcredit.report.page import derived, note, num, table, value_at
from fedcredit.simulation.local_summary import SUMMARY_ABOVE
from federation.run.results import HorizontalResults, RunResults

PRIVACY_HEADER = ["bank", "epsilon", "delta", "accountant", "noise multiplier (SGD)", "clip",
                  "sampling rate", "SGD steps", "noise multiplier (one-off releases)",
                  "noise multiplier (test histograms, per round)"]
DP_AUC_COST = "AUC cost: centralised (pooled, non-private) minus federated (private)"


def _bank_row(r: HorizontalResults, i: int) -> list[str]:
    at: tuple[str | int, ...] = ("privacy", i)
    return [num(r, *at, "bank"), num(r, *at, "epsilon", spec=".3g"),
            num(r, *at, "delta", spec=".2g"), num(r, *at, "accountant"),
            num(r, *at, "noise_multiplier", spec=".3g"), num(r, *at, "clip", spec="g"),
            num(r, *at, "sampling_rate", spec=".4g"), num(r, *at, "steps", spec=","),
            num(r, *at, "release_noise_multiplier", spec=".3g"),
            num(r, *at, "histogram_noise_multiplier", spec=".3g")]


def _bank_rows(r: HorizontalResults) -> list[list[str]]:
    """Every bank's row; beyond :data:`SUMMARY_ABOVE` banks only those with the smallest and
    the largest epsilon (the rest stay in results.json)."""
    plans = r.privacy or ()
    if len(plans) <= SUMMARY_ABOVE:
        return [_bank_row(r, i) for i in range(len(plans))]
    by_epsilon = sorted(range(len(plans)), key=lambda i: plans[i].epsilon)
    return [_bank_row(r, i) for i in dict.fromkeys((by_epsilon[0], by_epsilon[-1]))]


def auc_cost(r: HorizontalResults) -> float | None:
    """Centralised (pooled, non-private) AUC minus the federated (private) AUC; None when
    either is not recorded."""
    central = value_at(r, ("centralized", "auc"))
    federated = value_at(r, ("federated", "auc"))
    if central is None or federated is None:
        return None
    return float(central) - float(federated)


def privacy_section(r: RunResults) -> str:
    """Each bank's epsilon/delta and mechanism, and the AUC cost against the pooled
    non-private model; empty for a run without differential privacy."""
    if not isinstance(r, HorizontalResults) or not r.privacy:
        return ""
    plans = r.privacy
    worst = max(p.epsilon for p in plans)
    parts = ['<h2 id="privacy">Differential privacy</h2>',
             f"<p>Every bank's borrowers are protected at epsilon at most "
             f"{derived(f'{worst:.3g}', 'dp-worst-epsilon')} (delta at most "
             f"{derived(f'{max(p.delta for p in plans):.2g}', 'dp-worst-delta')}), for the "
             "whole run: training and every released score histogram.</p>",
             table(PRIVACY_HEADER, _bank_rows(r), "privacy")]
    if len(plans) > SUMMARY_ABOVE:
        parts.append(note(f"{len(plans)} banks: the banks with the smallest and the largest "
                          "epsilon are shown; every bank's guarantee is in results.json "
                          "('privacy')."))
    cost = auc_cost(r)
    if cost is None:
        parts.append(note("AUC cost not shown: results.json holds no centralised (pooled) "
                          "baseline to compare with (a deployed coordinator holds no data)."))
    else:
        parts.append(table(["model", "AUC"], [
            [escape(names.federated_label(r)) + " (private)",
             num(r, "federated", "auc", spec=".4f")],
            [escape(names.CENTRALISED_POOLED) + " (non-private reference)",
             num(r, "centralized", "auc", spec=".4f")],
            [escape(DP_AUC_COST), derived(f"{cost:+.4f}", "dp-auc-cost")]], "privacy-cost"))
        parts.append(note("The reference is the centralised model on the same pooled training "
                          "rows without noise; the difference holds the cost of federating "
                          "(usually small; see the Summary) as well as that of the noise."))
    return "".join(parts)
