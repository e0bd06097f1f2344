"""``fedcredit vertical``: PSI, secure binning and vertical LR in Flower's simulation engine,
compared with the same LR on the joined plaintext data and on the bank's features alone.

The baselines are computed here, in the researcher's process, from both files; they never
run inside the federation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedcredit.simulation import app_reference
from fedcredit.simulation.horizontal import quiet_runtime
from federation.data.vertical_data import AlignedParty, align, entity_ids, load_party, prepare
from federation.errors import DataError
from federation.ml.metrics import ks_statistic, roc_auc
from federation.ml.taylor_lr import fit_taylor_lr, predict_logit
from federation.run.folder import RunFolder
from federation.run.identity import BANK_FILE, CENTER_FILE, data_hashes, run_identity, utc_now
from federation.run.results import Metrics, VerticalResults
from federation.run.vertical_config import VerticalConfig
from server.exchange import Observer
from server.vertical import VerticalResult, VerticalRun, result_payload


def make_vertical_server_app(cfg: VerticalConfig, sink: dict[str, VerticalResult], *,
                             on_progress: Callable[[str, int, int], None] | None = None,
                             observer: Observer | None = None) -> ServerApp:
    """A ServerApp running one vertical run and handing the result back in-process."""
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        sink["result"] = VerticalRun(grid, cfg, on_progress=on_progress, observer=observer).run()

    return server


def run_vertical_federation(cfg: VerticalConfig, *,
                            on_progress: Callable[[str, int, int], None] | None = None,
                            observer: Observer | None = None,
                            record_wire: Path | None = None) -> VerticalResult:
    """Two SuperNodes (partition 0 = bank, 1 = center) and the coordinator, simulated.

    Each party keeps its trained LR part in ``out/parties/ROLE/`` (its own folder, as a
    deployed node keeps it beside its data). With ``record_wire`` both parties append the
    messages they get and send to that file."""
    from flwr.simulation import run_simulation

    from clients.app import app as client_app
    from clients.wire_recorder import RecordingClientApp
    from server.errors import FederationError

    quiet_runtime()
    app_reference.install()  # Flower sends its actors the ClientApp by name, not by value
    # each party writes its model part under the run folder (parties/ROLE), from Ray's workers
    cfg = replace(cfg, out=str(Path(cfg.out).resolve()))
    sink: dict[str, VerticalResult] = {}
    run_simulation(
        server_app=make_vertical_server_app(cfg, sink, on_progress=on_progress, observer=observer),
        client_app=RecordingClientApp(client_app, record_wire) if record_wire else client_app,
        num_supernodes=2,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                        "init_args": {"num_cpus": 2, "num_gpus": 0, "include_dashboard": False,
                                      "log_to_driver": False}},
    )
    if "result" not in sink:
        raise FederationError("the vertical simulation ended without a result.")
    return sink["result"]


@dataclass(frozen=True, slots=True)
class VerticalBaselines:
    """The federated model's references: the same LR on the joined plaintext
    (``centralized``) and on the bank's features alone (``bank_only``)."""

    centralized: Metrics
    bank_only: Metrics


def vertical_baselines(cfg: VerticalConfig, run_id: str) -> VerticalBaselines:
    """Same intersection, split, preparation and LR on joined plaintext and bank-only data."""
    bank = load_party(cfg.bank_data, id_col=cfg.id_col, target=cfg.target,
                      positive_label=cfg.positive_label or None)
    center = load_party(cfg.center_data, id_col=cfg.id_col, target=None)
    common = np.intersect1d(entity_ids(bank), entity_ids(center))
    parts = []
    for table, role in ((bank, "bank"), (center, "center")):
        positions = np.flatnonzero(np.isin(entity_ids(table), common))
        parts.append(prepare(align(table, positions), role, run_salt=run_id,
                             test_fraction=cfg.test_fraction))
    b, c = parts
    y_train, y_test = b.y_train, b.y_test
    if y_train is None or y_test is None:
        raise DataError(f"{cfg.bank_data}: the bank's rows carry no labels (target '{cfg.target}').")

    if cfg.model == "secureboost":
        return _tree_baselines(cfg, b, c, y_train, y_test)

    def evaluate(x_train: np.ndarray, x_test: np.ndarray) -> Metrics:
        w = fit_taylor_lr(x_train, y_train, epochs=cfg.epochs, batch_size=cfg.batch_size,
                          learning_rate=cfg.learning_rate, l2=cfg.l2, seed=cfg.seed)
        p = 1 / (1 + np.exp(-predict_logit(x_test, w)))
        return Metrics(auc=roc_auc(y_test, p), ks=ks_statistic(y_test, p))

    return VerticalBaselines(
        centralized=evaluate(np.hstack([b.x_train, c.x_train]), np.hstack([b.x_test, c.x_test])),
        bank_only=evaluate(b.x_train, b.x_test))


def _tree_baselines(cfg: VerticalConfig, b: AlignedParty, c: AlignedParty, y_train: np.ndarray,
                    y_test: np.ndarray) -> VerticalBaselines:
    """The same trees on the joined plaintext (each party's own bins side by side, as the
    federation uses them, gaps and categories as the parties see them) and on the bank's
    features alone."""
    from federation.ml.gbdt import BinEdges, HistGBDT, pooled_edges

    gcfg = cfg.gbdt_config()
    bank_edges = pooled_edges(b.tree_train, gcfg.bins, n_categories=b.tree_categories)
    center_edges = pooled_edges(c.tree_train, gcfg.bins, n_categories=c.tree_categories)
    joined = BinEdges(bank_edges.cuts + center_edges.cuts,
                      bank_edges.n_categories + center_edges.n_categories, gcfg.bins)

    def evaluate(model: HistGBDT, x_test: np.ndarray) -> Metrics:
        p = model.predict_proba(x_test)[:, 1]
        return Metrics(auc=roc_auc(y_test, p), ks=ks_statistic(y_test, p))

    central = HistGBDT(gcfg, edges=joined).fit(np.hstack([b.tree_train, c.tree_train]), y_train)
    bank_only = HistGBDT(gcfg, edges=bank_edges).fit(b.tree_train, y_train)
    return VerticalBaselines(
        centralized=evaluate(central, np.hstack([b.tree_test, c.tree_test])),
        bank_only=evaluate(bank_only, b.tree_test))


def run_vertical(cfg: VerticalConfig, *,
                 on_progress: Callable[[str, int, int], None] | None = None,
                 record_wire: bool = False) -> VerticalResults:
    """The whole job: federation, baselines, ``out/results.json`` (and with ``record_wire``
    both parties' messages in ``out/wire.jsonl``)."""
    started, started_utc = time.perf_counter(), utc_now()
    data_sha256 = data_hashes({BANK_FILE: cfg.bank_data, CENTER_FILE: cfg.center_data})
    bank = load_party(cfg.bank_data, id_col=cfg.id_col, target=cfg.target,
                      positive_label=cfg.positive_label or None)  # bad input stops here
    load_party(cfg.center_data, id_col=cfg.id_col, target=None)
    wire = RunFolder(Path(cfg.out)).wire if record_wire else None
    if wire is not None:
        wire.unlink(missing_ok=True)
    result = run_vertical_federation(cfg, on_progress=on_progress, record_wire=wire)
    base = vertical_baselines(cfg, result.run_id)
    results = replace(
        result_payload(cfg, result), centralized=base.centralized, bank_only=base.bank_only,
        bank_data=cfg.bank_data, center_data=cfg.center_data,
        bank_columns=(*bank.numeric.columns, *bank.categorical.columns),
        wall_seconds=time.perf_counter() - started,
        identity=run_identity(run_id=result.run_id, started=started_utc,
                              data_sha256=data_sha256))
    results.write(RunFolder(Path(cfg.out)).results)
    return results
