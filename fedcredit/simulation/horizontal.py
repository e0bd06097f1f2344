"""``fedcredit simulate``: the Flower simulation plus the centralised and local-only baselines.

The simulation wires the bank ClientApp and the coordinator ServerApp into Flower's
Simulation Engine (Ray backend); this launcher is the one place that imports both sides.
Baselines use the same split, model and settings: centralised = every bank's training rows
pooled in one place; local-only = each bank alone. All AUC/KS are on the union of the banks'
test splits.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from fedcredit.simulation import app_reference, link_polling
from fedcredit.simulation.backend import simulation_backend
from fedcredit.simulation.trees import tree_baselines
from federation.data.bank_data import bank_data, bank_splits, load_table
from federation.ml.preprocess import pooled_preprocessor
from federation.ml.training import auc_ks, bank_privacy, fit_in_one_place, make_model
from federation.run.config import RunConfig
from federation.run.folder import RunFolder
from federation.run.identity import DATA_SET, data_hashes, run_identity, utc_now
from federation.run.key_store import provision_simulation_keys
from federation.run.results import (
    AuditRef,
    BankBaseline,
    BankPrivacy,
    HorizontalResults,
    LocalOnly,
    Metrics,
)
from federation.steps.secure_sum import summation_scheme
from server.app import make_server_app
from server.audit import AuditLog
from server.errors import FederationError
from server.horizontal import Observer
from server.results import coordinator_results, save_model
from server.run_state import FederatedResult, RoundRecord


def quiet_runtime() -> None:
    """Keep Flower's and Ray's start-up chatter out of the user's terminal."""
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_LOG_TO_STDERR", "0")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    for name in ("flwr", "ray"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def run_federation(
    cfg: RunConfig,
    *,
    on_round: Callable[[RoundRecord], None] | None = None,
    observer: Observer | None = None,
    resume: bool = False,
    on_progress: Callable[[int], None] | None = None,
    record_wire: Path | None = None,
) -> FederatedResult:
    """Run the horizontal federation in Flower's simulation engine and return its result.

    With ``record_wire`` every bank appends the messages it gets and sends to that file
    (``clients.wire_recorder``; ``fedcredit audit wire`` reads it).

    With ``resume`` the coordinator continues from the checkpoint in ``cfg.out``. A fresh run
    without a key folder gets the simulation's key ceremony in ``out/keys`` first (every run
    signs its updates, simulated or deployed); a resumed one without a key folder reuses
    ``out/keys``, the keys its first part ran with.
    """
    from flwr.simulation import run_simulation  # heavy import, only when simulating

    from clients.app import app as client_app
    from clients.wire_recorder import RecordingClientApp

    if not cfg.keys_dir:
        cfg = (replace(cfg, keys_dir=str(RunFolder(Path(cfg.out)).keys.path)) if resume
               else fresh_run_folder(cfg, lambda _: None))
    quiet_runtime()
    link_polling.install()  # Flower's engine asks only the banks with a request waiting
    app_reference.install()  # ... and sends its actors the ClientApp by name, not by value
    sink: dict[str, FederatedResult] = {}
    server_app = make_server_app(replace(cfg, resume=resume), sink=sink, on_round=on_round,
                                 observer=observer, on_progress=on_progress)
    run_simulation(
        server_app=server_app,
        client_app=RecordingClientApp(client_app, record_wire) if record_wire else client_app,
        num_supernodes=cfg.banks,
        backend_config=simulation_backend(cfg.banks),  # this machine, or RAY_ADDRESS's cluster
    )
    if "result" not in sink:
        raise FederationError("the simulation ended without a result; rerun with --verbose.")
    return sink["result"]


def fresh_run_folder(cfg: RunConfig, phase: Callable[[str], None]) -> RunConfig:
    """Run the banks' key ceremony in ``out/keys`` unless the run names a keys folder."""
    out = Path(cfg.out)
    if cfg.keys_dir:
        return cfg
    phase("key ceremony")
    keys_dir = RunFolder(out).keys.path
    provision_simulation_keys(keys_dir, cfg.banks, bits=cfg.key_bits,
                              paillier=summation_scheme(cfg.aggregation).needs_paillier_key)
    return replace(cfg, keys_dir=str(keys_dir))


def baselines(cfg: RunConfig, result: FederatedResult) -> tuple[Metrics, LocalOnly]:
    """Centralised and local-only models on the same split, evaluated on the union of tests.

    Each bank's entry also scores the federated and centralised models on that bank's own
    test rows (done here, in the researcher's process, never over the wire).
    """
    datas = [bank_data(cfg, b) for b in range(cfg.banks)]
    trains = [d.train for d in datas]
    tests = [d.test for d in datas]
    prep = pooled_preprocessor(trains)
    central_model = fit_in_one_place(cfg, prep, trains)
    fed_prep = result.preprocessor or prep
    fed_model = make_model(cfg, fed_prep.n_features).set_weights(result.weights)
    per_bank = []
    for d in datas:
        own_prep = pooled_preprocessor([d.train])
        model = fit_in_one_place(cfg, own_prep, [d.train])
        union = auc_ks(model, own_prep, tests)
        per_bank.append(BankBaseline(
            bank=d.bank, train_rows=d.train.n_rows, test_rows=d.test.n_rows,
            bad_rate=float(d.train.y.mean()), auc=union["auc"], ks=union["ks"],
            own_test_auc=auc_ks(model, own_prep, [d.test])["auc"],
            federated_own_test_auc=auc_ks(fed_model, fed_prep, [d.test])["auc"],
            centralized_own_test_auc=auc_ks(central_model, prep, [d.test])["auc"],
        ))
    mean_auc = float(np.nanmean([b.auc for b in per_bank]))
    return (Metrics(**auc_ks(central_model, prep, tests)),
            LocalOnly(mean_auc=mean_auc, per_bank=tuple(per_bank)))


def privacy_plans(cfg: RunConfig, train_rows: list[int]) -> tuple[BankPrivacy, ...] | None:
    """Each bank's DP guarantee (``results.json`` ``privacy``; ``None`` without
    ``--dp-epsilon``): the banks compute the same plans from the same settings and row counts.

    Raises
    ------
    UnsupportableBudgetError
        A bank cannot meet the requested epsilon (before any node starts).
    """
    if cfg.dp_epsilon <= 0:
        return None
    return tuple(bank_privacy(cfg, bank, rows) for bank, rows in enumerate(train_rows))


def simulate(
    cfg: RunConfig,
    *,
    on_round: Callable[[RoundRecord], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    resume: bool = False,
    on_progress: Callable[[int], None] | None = None,
    record_wire: bool = False,
) -> HorizontalResults:
    """The main job: validate data, federate, compare with baselines, write ``out``.

    ``record_wire`` writes every bank's messages to ``out/wire.jsonl`` (a fresh file).

    A fresh run runs the banks' key ceremony in ``out/keys`` (signing keys, and the Paillier
    key for ``paillier``) unless ``keys_dir`` names one; ``resume`` continues a stopped run.
    """
    started, started_utc = time.perf_counter(), utc_now()
    phase = on_phase or (lambda _: None)
    phase("checking data")
    table = load_table(cfg)  # a bad file or setting stops here, before any node starts
    data_sha256 = data_hashes({DATA_SET: cfg.data_path})  # the file as the run reads it
    splits = bank_splits(cfg)
    privacy = privacy_plans(cfg, [len(s.train) for s in splits])  # an unmeetable epsilon too
    if not resume:
        cfg = fresh_run_folder(cfg, phase)
    phase("federated training")
    wire = RunFolder(Path(cfg.out)).wire if record_wire else None
    if wire is not None and not resume:
        wire.unlink(missing_ok=True)
    result = run_federation(cfg, on_round=on_round, resume=resume, on_progress=on_progress,
                            record_wire=wire)
    fed_seconds = time.perf_counter() - started
    phase("centralised and local-only baselines")
    coordinator = coordinator_results(cfg, result)
    trees = coordinator.trees
    if cfg.model == "gbdt":
        centralized, local_only, trees = tree_baselines(cfg, result, trees)
        features = result.tree_release.features if result.tree_release else ()
    else:
        centralized, local_only = baselines(cfg, result)
        features = tuple(result.preprocessor.feature_names) if result.preprocessor else ()
    out = Path(cfg.out)
    folder = RunFolder(out)
    save_model(out, result)
    results = replace(
        coordinator, dataset=str(cfg.data_path), target=cfg.target, rows=table.n_rows,
        features=features, trees=trees,
        strategy=cfg.strategy, centralized=centralized, local_only=local_only,
        dropouts=tuple(result.dropouts), signed_updates=bool(cfg.keys_dir), privacy=privacy,
        audit=AuditRef(file=str(folder.audit), head=AuditLog(out).head),
        federated_seconds=fed_seconds, wall_seconds=time.perf_counter() - started,
        identity=run_identity(run_id=result.run_id, started=started_utc,
                              data_sha256=data_sha256))
    results.write(folder.results)
    return results
