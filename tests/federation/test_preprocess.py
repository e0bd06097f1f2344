"""Federated preprocessing: summed aggregates give exactly the pooled statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.data.partition import split_banks
from federation.data.table import CreditTable, load_credit_csv
from federation.ml.preprocess import (
    FeatureLayout,
    Preprocessor,
    combine_stats,
    local_schema,
    local_stats_vector,
    merge_schemas,
    pooled_preprocessor,
)


def banks_of(path: Path, target: str, k: int = 4) -> tuple[CreditTable, list[CreditTable]]:
    table = load_credit_csv(path, target=target)
    return table, [table.subset(s.train) for s in split_banks(table.y, k, "iid", seed=1)]


def test_aggregates_equal_pooled_statistics(data_dir: Path) -> None:
    _, banks = banks_of(data_dir / "german_credit.csv", "bad")
    layout = merge_schemas([local_schema(b) for b in banks])
    total = np.sum([local_stats_vector(b, layout) for b in banks], axis=0)
    prep = combine_stats(layout, total)
    pooled_num = pd.concat([b.numeric for b in banks], ignore_index=True)
    pooled_cat = pd.concat([b.categorical for b in banks], ignore_index=True)
    for i, col in enumerate(prep.numeric):
        assert np.isclose(prep.means[i], pooled_num[col].mean(), rtol=1e-12)
        assert np.isclose(prep.stds[i], pooled_num[col].std(ddof=0), rtol=1e-9)
    for col, vocab in prep.categorical:
        assert set(vocab) == set(pooled_cat[col].dropna().unique())
        # most frequent first, as the pooled counts say
        assert vocab[0] == pooled_cat[col].value_counts().index[0]
    assert prep.n_rows == len(pooled_num)


def test_transform_standardises_and_one_hot_encodes(data_dir: Path) -> None:
    _, banks = banks_of(data_dir / "german_credit.csv", "bad")
    prep = pooled_preprocessor(banks)
    x = np.vstack([prep.transform(b) for b in banks])
    assert x.shape[1] == prep.n_features == len(prep.feature_names)
    k = len(prep.numeric)
    assert np.allclose(x[:, :k].mean(axis=0), 0.0, atol=1e-5)
    assert np.allclose(x[:, :k].std(axis=0), 1.0, atol=1e-3)
    onehot = x[:, k:]
    assert set(np.unique(onehot)) <= {0.0, 1.0}
    assert onehot.sum() == len(x) * len(prep.categorical)  # every row has each category once


def test_missing_values_are_imputed_with_the_federated_mean(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("a,c,t\n1,x,0\n,y,1\n3,,0\n5,x,1\n")
    table = load_credit_csv(path, target="t")
    prep = pooled_preprocessor([table.subset(np.array([0, 1])), table.subset(np.array([2, 3]))])
    assert np.isclose(prep.means[0], 3.0)
    x = prep.transform(table)
    assert x[1, 0] == 0.0  # missing -> mean -> 0 after standardising
    assert list(x[2, 1:]) == [0.0, 0.0]  # missing category -> no one-hot bit


def test_columns_typed_differently_become_categorical() -> None:
    from federation.ml.preprocess import LocalSchema
    layout = merge_schemas([LocalSchema(("a", "b"), {}), LocalSchema(("a",), {"b": ("x",)})])
    assert layout.numeric == ("a",)
    assert layout.categorical == (("b", ("x",)),)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=5), min_size=0, max_size=4, unique=True),
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=4),
)
def test_serde_round_trips(names: list[str], means: list[float]) -> None:
    numeric = tuple(f"n{i}" for i in range(len(means)))
    layout = FeatureLayout(numeric, (("c", tuple(names)),))
    assert FeatureLayout.from_json(layout.to_json()) == layout
    prep = Preprocessor(numeric, tuple(means), tuple(abs(m) + 1 for m in means),
                        (("c", tuple(names)),), 10)
    assert Preprocessor.from_json(prep.to_json()) == prep
