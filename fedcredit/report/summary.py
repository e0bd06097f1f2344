"""Report sections about the run: headline metrics with intervals, identity, settings, rounds.

Each function takes the typed results (and what :mod:`fedcredit.report.context` gathered)
and returns an HTML fragment whose numbers are tagged (:mod:`fedcredit.report.page`). Model
labels come from :mod:`fedcredit.report.names`, the CLI's own.
"""

from __future__ import annotations

from html import escape

from fedcredit.report import names
from fedcredit.report.context import RunContext
from fedcredit.report.page import NOT_RECORDED, derived, note, num, table, value_at
from fedcredit.report.statistics import (
    SMALL_SAMPLE_CLASS_ROWS,
    Interval,
    auc_interval,
    ks_interval,
    small_sample,
)
from fedcredit.simulation.local_summary import (
    SUMMARY_ABOVE,
    LocalSummary,
    Spread,
    summarise_local,
)
from federation.run.results import HorizontalResults, RunResults, VerticalResults

PRIVACY_MODES = {
    "plain": "Plain aggregation: the coordinator sees each bank's weighted model update and the "
             "summed score histograms in the clear; rows, labels and IDs never leave a bank.",
    "paillier": "Paillier aggregation: banks encrypt their updates and statistics under a key the "
                "coordinator does not hold; it adds ciphertexts and sees only the global AUC/KS "
                "(and the final model if the run releases it); rows, labels and IDs never leave "
                "a bank.",
}
TREE_PRIVACY_MODES = {
    "plain": "Plain aggregation (boosted trees): the coordinator sees each bank's gradient and "
             "hessian histograms of the requested nodes, the trees and the summed score "
             "histograms in the clear; rows, labels, gradients and IDs never leave a bank.",
    "paillier": "Paillier aggregation (boosted trees): banks encrypt their histograms under a key "
                "the coordinator does not hold; it adds ciphertexts and sees neither a histogram "
                "nor the trees (only the released model if the run releases it); rows, labels "
                "and IDs never leave a bank.",
}
VERTICAL_PRIVACY = {
    "lr": "Vertical, two-key Paillier: ECDH-PSI reveals only the intersection's size; each "
          "party keeps its own features and weights, the credit center never sees a label "
          "(it sums the bank's encrypted labels per bin for WOE/IV), and the coordinator "
          "relays ciphertexts and sees the held-out scores' AUC/KS and histograms.",
    names.SECUREBOOST: "Vertical SecureBoost: ECDH-PSI reveals only the intersection's size; the "
                       "bank's gradients reach the credit center encrypted, the center returns "
                       "encrypted bin sums and keeps its split thresholds; the coordinator "
                       "relays ciphertexts and sees the held-out scores' AUC/KS and histograms.",
}


def _gini(r: RunResults, *path: str | int) -> str:
    auc = value_at(r, (*path, "auc"))
    return NOT_RECORDED if auc is None else derived(f"{2 * auc - 1:.4f}", "gini")


def _interval(interval: Interval | None, kind: str) -> str:
    if interval is None:
        return NOT_RECORDED
    return derived(f"{interval.low:.4f} to {interval.high:.4f}", kind)


def federated_intervals(r: RunResults) -> tuple[Interval | None, Interval | None]:
    """DeLong AUC and bootstrap KS intervals of the federated model (None without histograms)."""
    hist = r.score_histograms
    if hist is None or sum(hist.bad) == 0 or sum(hist.good) == 0:
        return None, None
    fed = r.federated
    auc = None if fed is None else fed.auc
    ks = None if fed is None else fed.ks
    return (auc_interval(hist.bad, hist.good, auc=auc),
            ks_interval(hist.bad, hist.good, ks=ks))


def _model_rows(r: RunResults) -> list[list[str]]:
    rows: list[list[str]] = []
    if isinstance(r, VerticalResults):
        for label, key in ((names.CENTRALISED_JOINED, "centralized"),
                           (names.BANK_ONLY, "bank_only")):
            if value_at(r, (key,)) is not None:
                rows.append([escape(label), num(r, key, "auc", spec=".4f"), "",
                             num(r, key, "ks", spec=".4f"), "", _gini(r, key)])
        return rows
    if r.centralized is not None:
        rows.append([escape(names.CENTRALISED_POOLED), num(r, "centralized", "auc", spec=".4f"),
                     "", num(r, "centralized", "ks", spec=".4f"), "", _gini(r, "centralized")])
    if r.local_only is not None and many_banks(r):
        rows += _local_spread_rows(summarise_local(r.local_only))
    elif r.local_only is not None:
        for i, bank in enumerate(r.local_only.per_bank):
            at: tuple[str | int, ...] = ("local_only", "per_bank", i)
            rows.append([escape(names.local_only_bank_label(bank.bank, bank.train_rows)),
                         num(r, *at, "auc", spec=".4f"), "", num(r, *at, "ks", spec=".4f"), "",
                         _gini(r, *at)])
    if r.local_only is not None:
        rows.append([escape(names.LOCAL_ONLY_MEAN), num(r, "local_only", "mean_auc", spec=".4f"),
                     "", "", "", ""])
    if r.trees is not None and r.trees.lr_reference is not None:
        at = ("trees", "lr_reference")
        rows.append([escape(names.LR_REFERENCE), num(r, *at, "auc", spec=".4f"), "",
                     num(r, *at, "ks", spec=".4f"), "", _gini(r, *at)])
    return rows


def many_banks(r: RunResults) -> bool:
    """More banks than the CLI lists one by one: the report then summarises the local-only
    models (:mod:`fedcredit.simulation.local_summary`) and keeps per-bank detail in
    results.json."""
    return (isinstance(r, HorizontalResults) and r.local_only is not None
            and len(r.local_only.per_bank) > SUMMARY_ABOVE)


def _spread_cell(spread: Spread | None, pick: str, kind: str) -> str:
    value = None if spread is None else getattr(spread, pick)
    return NOT_RECORDED if value is None else derived(f"{value:.4f}", kind)


def _local_spread_rows(summary: LocalSummary) -> list[list[str]]:
    """min / median / max of the banks' own models and the banks gaining from federation,
    under the CLI's labels."""
    rows = [[escape(names.local_only_spread_label(label, summary.banks)),
             _spread_cell(summary.auc, pick, f"local-{pick}-auc"), "",
             _spread_cell(summary.ks, pick, f"local-{pick}-ks"), "", ""]
            for label, pick in (("min", "low"), ("median", "middle"), ("max", "high"))]
    share = "" if summary.gaining_share is None else f" ({summary.gaining_share:.0%})"
    rows.append([names.BANKS_GAINING + ": " + derived(f"{summary.gaining}", "banks-gaining")
                 + " of " + derived(f"{summary.compared}", "banks-compared") + escape(share),
                 "", "", "", "", ""])
    return rows


def summary_section(r: RunResults) -> str:
    """Headline AUC/KS/Gini of every model, the federated one with 95% intervals."""
    auc_ci, ks_ci = federated_intervals(r)
    rows = [[escape(names.federated_label(r)), num(r, "federated", "auc", spec=".4f"),
             _interval(auc_ci, "auc-ci"), num(r, "federated", "ks", spec=".4f"),
             _interval(ks_ci, "ks-ci"), _gini(r, "federated")], *_model_rows(r)]
    parts = ["<h2>Summary</h2>", table(["model", "AUC", "AUC 95% CI", "KS", "KS 95% CI",
                                        "Gini"], rows, "summary")]
    hist = r.score_histograms
    if hist is not None:
        bads, total = sum(hist.bad), sum(hist.bad) + sum(hist.good)
        parts.append(f"<p>AUC and KS on {escape(names.test_rows_phrase(r))}: "
                     f"{derived(f'{total:,}', 'test-rows')} rows, "
                     f"{derived(f'{bads:,}', 'test-bads')} of them bad.</p>")
        if small_sample(hist.bad, hist.good):
            parts.append(note(
                f"Small sample: fewer than {SMALL_SAMPLE_CLASS_ROWS} bad or good test rows. AUC "
                "and KS are uncertain (see the intervals); validate on more held-out rows "
                "before relying on them.", css="warning small-sample"))
    if auc_ci is not None:
        parts.append(note("Intervals: AUC by DeLong's variance, KS by a stratified bootstrap "
                          "(2,000 resamples, seeded), both from the summed test-score histograms "
                          "and centred on the reported value; only the federated model's "
                          "histograms are in results.json."))
    if isinstance(r, HorizontalResults) and r.centralized is None:
        parts.append(note("No baselines in results.json (a deployed coordinator holds no data)."))
    if many_banks(r):
        parts.append(note("Local-only min / median / max: the spread of the banks' own models, "
                          "each on all banks' test rows (as the CLI prints it); a bank gains "
                          "from federation when the federated model scores its own test rows "
                          "with a higher AUC than its own model does."))
    elif isinstance(r, HorizontalResults) and r.local_only is not None:
        parts.append(note("Local-only bank K: bank K's own model on all banks' test rows (as "
                          "the CLI prints it); its AUC on bank K's own test rows is in the "
                          "Banks table as own-test AUC."))
    return "".join(parts)


def _run_id(r: RunResults, context: RunContext) -> str:
    if r.identity is not None and r.identity.run_id:
        return num(r, "identity", "run_id")
    if isinstance(r, VerticalResults):
        return num(r, "run_id")
    if r.deployment is not None:
        return num(r, "deployment", "run_id")
    return escape(context.audit_run_id or NOT_RECORDED)


def _recorded_identity(r: RunResults) -> list[list[str]]:
    """The facts the run recorded itself (``results.identity``), or why they are absent."""
    if r.identity is None:
        return [["fedcredit release of the run", escape(NOT_RECORDED)
                 + " (results.json predates the run identity)"]]
    return [["fedcredit release of the run", num(r, "identity", "fedcredit_version")],
            ["run started (UTC)", num(r, "identity", "started_utc")],
            ["run finished (UTC)", num(r, "identity", "finished_utc")]]


def _data_rows(r: RunResults, context: RunContext) -> list[list[str]]:
    """Each data file: its path, the SHA-256 the run recorded when it read it (a simulation),
    and the hash of the file found there when the report was written."""
    recorded = (r.identity.data_sha256 if r.identity is not None else None) or {}
    rows = []
    for fp in context.data_files:
        rows.append([escape(fp.role), f"<code>{escape(fp.path)}</code>"])
        if fp.role in recorded:
            rows.append([escape(f"{fp.role}: SHA-256 as the run read it"),
                         f"<code>{num(r, 'identity', 'data_sha256', fp.role)}</code>"])
        found = fp.sha256 or "not found here"
        same = ("" if fp.role not in recorded or fp.sha256 is None else
                " (the same file)" if fp.sha256 == recorded[fp.role] else
                " (DIFFERS: the file changed since the run)")
        rows.append([escape(f"{fp.role}: SHA-256 when this report was written"),
                     f"<code>{escape(found)}</code>{escape(same)}"])
    for role in sorted(set(recorded) - {fp.role for fp in context.data_files}):
        rows.append([escape(f"{role}: SHA-256 as the run read it"),
                     f"<code>{num(r, 'identity', 'data_sha256', role)}</code>"])
    if not rows:
        rows.append(["data files", escape(NOT_RECORDED)])
    return rows


def identity_section(r: RunResults, context: RunContext) -> str:
    """Which release made the run, when, on which data files; its audit head. The run's own
    record (``results.identity``) where it has one; the report's findings labelled as such."""
    rows = [["run id", _run_id(r, context)], *_recorded_identity(r),
            ["results.json written (file time)", escape(context.results_written or NOT_RECORDED)],
            ["fedcredit release of this report", escape(context.report_version or NOT_RECORDED)],
            ["audit log head (SHA-256)", num(r, "audit", "head")],
            ["audit log check (fedcredit audit verify)",
             escape(context.audit_check or "no audit.jsonl in the run folder")],
            *_data_rows(r, context)]
    deployed = r.deployment is not None or (r.identity is not None
                                             and not r.identity.data_sha256)
    return ('<h2 id="identity">Run identity</h2>' + table(["fact", "value"], rows, "identity")
            + note("Release, start and finish are recorded by the run itself (results.json "
                   "'identity'); so is each data file's SHA-256 where the run read the file "
                   "(a simulation). "
                   + ("A deployed coordinator holds no bank's file and records no data hash; "
                      "each bank's file stays with its bank. " if deployed else "")
                   + "The hash 'when this report was written' is of the file found at the "
                   "recorded path now; `fedcredit audit verify RUN_DIR` checks the audit log "
                   "against its head."))


def _or_config(r: HorizontalResults, name: str, key: str) -> str:
    """A run fact, or the run config's setting for it where the results leave it out."""
    if value_at(r, (name,)) is None and value_at(r, ("config", key)) not in (None, ""):
        return num(r, "config", key)
    return num(r, name)


def _horizontal_facts(r: HorizontalResults) -> list[list[str]]:
    deployed = "not recorded (a deployed coordinator holds no data)"
    unit = "trees" if r.trees is not None else "rounds"
    target = (num(r, "target", missing=deployed) if r.target is not None
              or not value_at(r, ("config", "target")) else num(r, "config", "target"))
    return [["data set", _or_config(r, "dataset", "data-path")], ["target", target],
            ["rows", num(r, "rows", spec=",", missing=deployed)], ["banks", num(r, "banks")],
            [unit, num(r, "rounds")], ["model", _or_config(r, "model", "model")],
            ["partition", _or_config(r, "partition", "partition")],
            ["strategy", _or_config(r, "strategy", "strategy")],
            ["seed", _or_config(r, "seed", "seed")],
            ["federated seconds", num(r, "federated_seconds", spec=".1f")],
            ["wall seconds", num(r, "wall_seconds", spec=".1f")]]


def _vertical_facts(r: VerticalResults) -> list[list[str]]:
    return [["bank file", num(r, "bank_data")], ["credit-center file", num(r, "center_data")],
            ["model", escape(str(r.config.get("model") or "lr"))],
            ["bank rows", num(r, "psi", "bank_rows", spec=",")],
            ["credit-center rows", num(r, "psi", "center_rows", spec=",")],
            ["intersection (PSI)", num(r, "psi", "intersection", spec=",")],
            ["training rows", num(r, "train_rows", spec=",")],
            ["held-out rows", num(r, "test_rows", spec=",")],
            ["bank features", derived(f"{len(r.bank_features)}", "bank-features")],
            ["credit-center features", derived(f"{len(r.center_features)}", "center-features")],
            ["epochs", num(r, "epochs")], ["Paillier key bits", num(r, "key_bits")],
            ["bytes relayed", num(r, "bytes_relayed", spec=",")],
            ["wall seconds", num(r, "wall_seconds", spec=".1f")]]


def privacy_text(r: RunResults) -> tuple[str, str]:
    """``(mode, what it reveals to whom)`` of the run."""
    if isinstance(r, VerticalResults):
        kind = str(r.config.get("model") or "lr")
        return "vertical", VERTICAL_PRIVACY.get(kind, VERTICAL_PRIVACY["lr"])
    mode = names.aggregation_mode(r)
    modes = TREE_PRIVACY_MODES if r.trees is not None else PRIVACY_MODES
    if mode is None:
        return NOT_RECORDED, "The results record no aggregation mode."
    return mode, modes.get(mode, f"Aggregation mode '{mode}' (not described by this release).")


def settings_section(r: RunResults) -> str:
    """The run's facts and settings and what its privacy mode reveals to whom."""
    mode, privacy = privacy_text(r)
    facts = _vertical_facts(r) if isinstance(r, VerticalResults) else _horizontal_facts(r)
    if r.deployment is not None:
        facts += [["deployment", num(r, "deployment", "engine")],
                  ["TLS", num(r, "deployment", "tls")],
                  ["node authentication", num(r, "deployment", "node_auth")],
                  ["run status", num(r, "deployment", "status")]]
    config = [[escape(k), num(r, "config", k)] for k in sorted(r.config or {})]
    return (f'<h2>Settings and privacy mode</h2><p id="privacy-mode"><b>{escape(mode)}</b>: '
            f"{escape(privacy)}</p>" + table(["run", "value"], facts, "run-facts")
            + (table(["setting", "value"], config, "settings") if config else ""))


def history_section(r: RunResults) -> str:
    """AUC, KS and time per round (per tree for boosted trees; seconds per epoch if vertical)."""
    if isinstance(r, VerticalResults):
        rows = [[derived(str(i + 1), "epoch"), num(r, "epoch_seconds", i, spec=".2f")]
                for i in range(len(r.epoch_seconds))]
        return ("<h2>Epochs</h2>" + table(["epoch", "seconds"], rows, "history")
                + note("A vertical run measures AUC/KS once, on the held-out rows after "
                       "training (Summary)."))
    history = r.history or ()
    rows = [[num(r, "history", i, "round"), num(r, "history", i, "auc", spec=".4f"),
             num(r, "history", i, "ks", spec=".4f"), num(r, "history", i, "seconds", spec=".2f"),
             num(r, "history", i, "banks")] for i in range(len(history))]
    step, title = ("tree", "Trees") if r.trees is not None else ("round", "Rounds")
    if not rows:
        return f"<h2>{title}</h2>" + note(f"results.json records no {step} history.")
    return f"<h2>{title}</h2>" + table([step, "AUC", "KS", "seconds", "banks"], rows, "history")


def banks_section(r: RunResults) -> str:
    """Per bank: sizes, and AUC of each model on all banks' tests and on its own test rows."""
    if not isinstance(r, HorizontalResults) or r.local_only is None:
        return ""
    if many_banks(r):
        return ("<h2>Banks</h2>" + note(
            f"{len(r.local_only.per_bank)} banks: the Summary shows the spread of their own "
            "models and how many gain from federating; each bank's sizes and own-test AUCs are "
            "in results.json ('local_only.per_bank')."))
    rows = []
    for i in range(len(r.local_only.per_bank)):
        at: tuple[str | int, ...] = ("local_only", "per_bank", i)
        rows.append([num(r, *at, "bank"), num(r, *at, "train_rows", spec=","),
                     num(r, *at, "test_rows", spec=","), num(r, *at, "bad_rate", spec=".3f"),
                     num(r, *at, "auc", spec=".4f"), num(r, *at, "own_test_auc", spec=".4f"),
                     num(r, *at, "federated_own_test_auc", spec=".4f"),
                     num(r, *at, "centralized_own_test_auc", spec=".4f")])
    header = ["bank", "train rows", "test rows", "bad rate", "local-only AUC (all banks' tests)",
              "local-only own-test AUC", "federated own-test AUC", "centralised own-test AUC"]
    return "<h2>Banks</h2>" + table(header, rows, "banks")

