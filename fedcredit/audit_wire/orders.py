"""The row orders a party holds its rows in during a run, rebuilt from the run folder.

A leak rarely sends a column in file order: a bank sends its own training rows, a vertical
party its rows of the intersection sorted by ID and split by the run's salt. This module
rebuilds those orders from what the run folder says (a horizontal run's checkpoint holds its
settings; a vertical run's results hold both files, the run id and its settings), on the data
owner's machine. Where the folder says nothing (a bank's own folder in a deployment), the file
order and the ID order remain.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fedcredit.audit_wire.targets import RowOrder, file_orders
from federation.data.table import CreditTable
from federation.ml.preprocess import Preprocessor
from federation.run.folder import RunFolder
from protocols.errors import FedCreditError


def horizontal_orders(run: Path, data: CreditTable, *, data_path: str, target: str | None,
                      id_col: str | None) -> list[RowOrder]:
    """Each simulated bank's training and test rows, from the run's checkpoint settings."""
    from federation.data.bank_data import bank_data
    from server.checkpoint import load_checkpoint

    if not RunFolder(run).checkpoint.exists():
        return []
    try:
        cfg, _, _ = load_checkpoint(run)
        cfg = replace(cfg, data_path=data_path, target=target or cfg.target,
                      id_col=id_col if id_col is not None else cfg.id_col)
        banks = [bank_data(cfg, b) for b in range(cfg.banks)]
    except (FedCreditError, OSError, ValueError):
        return []
    if sum(b.train.n_rows + b.test.n_rows for b in banks) > data.n_rows:
        return []  # not the file this run split
    return [RowOrder(f"bank {b.bank} {part} rows", table)
            for b in banks for part, table in (("training", b.train), ("test", b.test))]


def vertical_orders(run: Path) -> tuple[list[RowOrder], list[Preprocessor]]:
    """Each party's training and test rows of the intersection (ID order, the run's split) and
    each party's own standardisation, from the run's results.json."""
    from federation.data.vertical_data import align, entity_ids, load_party, prepare
    from federation.run.results import VerticalResults, read_results
    from federation.run.vertical_config import VerticalConfig

    try:
        results = read_results(RunFolder(run).results)
        if not isinstance(results, VerticalResults):
            return [], []
        cfg = VerticalConfig.from_user_config(dict(results.config))
        bank_file = results.bank_data or cfg.bank_data
        center_file = results.center_data or cfg.center_data
        tables = [load_party(bank_file, id_col=cfg.id_col, target=cfg.target,
                             positive_label=cfg.positive_label or None),
                  load_party(center_file, id_col=cfg.id_col, target=None)]
    except (FedCreditError, OSError, ValueError):
        return [], []
    ids = [entity_ids(t) for t in tables]
    common = np.intersect1d(ids[0], ids[1])
    orders, preps = [], []
    for table, own, role in zip(tables, ids, ("bank", "center"), strict=True):
        shared = align(table, np.flatnonzero(np.isin(own, common)))
        part = prepare(shared, role, run_salt=results.run_id, test_fraction=cfg.test_fraction)
        test_ids = np.setdiff1d(common, entity_ids(part.train_table))
        test = align(table, np.flatnonzero(np.isin(own, test_ids)))
        orders += [RowOrder(f"{role} training rows (ID order)", part.train_table),
                   RowOrder(f"{role} test rows (ID order)", test),
                   RowOrder(f"{role} intersection (ID order)", shared)]
        preps.append(part.preprocessor)
    return orders, preps


def party_orders(run: Path, data: CreditTable, *, data_path: str, target: str | None,
                 id_col: str | None) -> tuple[list[RowOrder], list[Preprocessor]]:
    """File and ID order of ``data``, plus every order the run folder lets us rebuild for the
    party whose file ``data`` is (orders of the other party's rows are left out)."""
    orders = file_orders(data)
    v_orders, preps = vertical_orders(run)
    own = Path(data.source).resolve()
    orders += [o for o in v_orders if Path(o.table.source).resolve() == own]
    orders += horizontal_orders(run, data, data_path=data_path, target=target, id_col=id_col)
    return orders, preps
