"""Tree inputs from a bank's table and the shared preprocessor (raw numbers, category codes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from federation.data.table import CreditTable, load_credit_csv
from federation.errors import ConfigError, SchemaError
from federation.ml.gbdt.binning import edges_from_fine_counts, fine_counts
from federation.ml.preprocess import Preprocessor, pooled_preprocessor
from federation.ml.tree_features import (
    tree_categories,
    tree_feature_names,
    tree_grid,
    tree_matrix,
    tree_row_ids,
)


def table(numeric: dict, categorical: dict, ids=None, source: str = "bank.csv") -> CreditTable:
    rows = len(next(iter({**numeric, **categorical}.values())))
    return CreditTable(source, "bad", np.zeros(rows, dtype=np.int8), pd.DataFrame(numeric),
                       pd.DataFrame(categorical), None if ids is None else np.asarray(ids))


@pytest.fixture(scope="module")
def german(data_dir: Path) -> tuple[CreditTable, Preprocessor]:
    t = load_credit_csv(data_dir / "german_credit.csv", target="bad")
    return t, pooled_preprocessor([t])


def test_german_numeric_raw_and_categories_as_vocabulary_codes(german) -> None:
    t, prep = german
    X = tree_matrix(t, prep)
    names = tree_feature_names(prep)
    assert X.shape == (t.n_rows, len(names)) == (t.n_rows, len(tree_categories(prep)))
    k = len(prep.numeric)
    assert np.array_equal(X[:, :k], t.numeric[list(prep.numeric)].to_numpy(), equal_nan=True)
    for j, (col, vocab) in enumerate(prep.categorical):
        codes = X[:, k + j]
        present = ~np.isnan(codes)
        assert [vocab[int(c)] for c in codes[present]] == list(
            t.categorical[col].to_numpy(dtype=object)[present])
    assert tree_categories(prep)[k:] == tuple(len(v) for _, v in prep.categorical)
    assert any(n for n in tree_categories(prep))


def test_fine_counts_on_the_grid_give_edges(german) -> None:
    t, prep = german
    grid = tree_grid(prep, cells=128)
    counts = fine_counts(tree_matrix(t, prep), grid)
    edges = edges_from_fine_counts(counts, grid, 32)
    assert edges.n_categories == tree_categories(prep)
    assert counts[0].sum() == np.count_nonzero(~np.isnan(tree_matrix(t, prep)[:, 0]))


def test_missing_values_stay_missing_and_unknown_categories_are_nan() -> None:
    t = table({"income": [1.0, np.nan, 3.0], "level": [1.0, 2.0, np.nan]},
              {"city": ["a", None, "z"]})
    prep = Preprocessor(("income",), (2.0,), (1.0,), (("city", ("a", "b")), ("level", ("1", "2"))),
                        3)
    X = tree_matrix(t, prep)
    expected = [[1.0, 0.0, 0.0], [np.nan, np.nan, 1.0], [3.0, np.nan, np.nan]]
    assert np.array_equal(X, np.array(expected), equal_nan=True)
    assert tree_feature_names(prep) == ("income", "city", "level")


def test_constant_column_still_gives_a_valid_grid() -> None:
    prep = Preprocessor(("flat",), (5.0,), (0.0,), (), 10)
    grid = tree_grid(prep, cells=16)
    assert grid.low[0] <= grid.high[0]
    assert fine_counts(np.full((10, 1), 5.0), grid).sum() == 10


def test_missing_columns_are_named() -> None:
    t = table({"income": [1.0]}, {"city": ["a"]}, source="bank3.csv")
    with pytest.raises(SchemaError, match="bank3.csv.*age"):
        tree_matrix(t, Preprocessor(("age",), (0.0,), (1.0,), (), 1))
    with pytest.raises(SchemaError, match="bank3.csv.*'region'"):
        tree_matrix(t, Preprocessor((), (), (), (("region", ("x",)),), 1))


def test_too_many_categories_are_refused() -> None:
    prep = Preprocessor((), (), (), (("code", tuple(str(i) for i in range(300))),), 1)
    with pytest.raises(ConfigError, match="'code'.*300"):
        tree_categories(prep)


def test_row_ids_hash_ids_stably_or_use_the_bank_block() -> None:
    with_ids = table({"x": [1.0, 2.0, 3.0]}, {}, ids=["A1", "B2", "A1"])
    ids = tree_row_ids(with_ids, bank=0)
    assert ids.dtype == np.int64 and np.all(ids >= 0) and np.all(ids < 2**62)
    assert ids[0] == ids[2] != ids[1]
    assert np.array_equal(ids, tree_row_ids(with_ids, bank=5))  # ids key rows, not banks
    assert np.array_equal(ids, tree_row_ids(table({"x": [0.0] * 3}, {}, ids=["A1", "B2", "A1"]),
                                            bank=1))
    plain = tree_row_ids(table({"x": [1.0, 2.0]}, {}), bank=3)
    assert plain.tolist() == [3 << 40, (3 << 40) + 1]
