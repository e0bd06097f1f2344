"""Embedded data sets: names resolve to the packaged files from any folder, load and export
exactly the shared CSVs, unknown names fail naming the known ones, the wheel ships them."""

from __future__ import annotations

import gzip
import tomllib
from pathlib import Path

import numpy as np
import pytest

from federation.data.embedded import (
    EMBEDDED_DATASETS,
    PACKAGE,
    UnknownDatasetError,
    _source_folder,
    embedded_dataset,
    embedded_file,
    export_dataset,
    find_embedded,
    summarize,
)
from federation.data.table import load_credit_csv
from federation.errors import DataError
from federation.run.config import DEFAULT_DATA, RunConfig, resolve_data_path

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(EMBEDDED_DATASETS))
def test_each_name_resolves_to_a_gzip_of_the_shared_csv(name: str, data_dir: Path) -> None:
    dataset = embedded_dataset(name)
    path = resolve_data_path(name)
    assert path == embedded_file(dataset) and path.name == dataset.file
    assert gzip.decompress(path.read_bytes()) == (data_dir / dataset.csv_name).read_bytes()


def test_paths_are_not_names() -> None:
    assert find_embedded("uci.csv") is None and find_embedded("data/uci") is None
    assert find_embedded("UCI") is None and find_embedded("german") is not None


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownDatasetError, match="embedded data sets are uci, german"):
        export_dataset("mnist", tmp_path / "x.csv")
    assert issubclass(UnknownDatasetError, DataError)


def test_a_missing_file_names_the_embedded_sets(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found.*uci, german"):
        load_credit_csv(tmp_path / "nothing.csv", target="bad")


@pytest.mark.parametrize("name", list(EMBEDDED_DATASETS))
def test_export_round_trip_equals_the_shared_csv(name: str, data_dir: Path, tmp_path: Path) -> None:
    dataset = EMBEDDED_DATASETS[name]
    written = export_dataset(name, tmp_path / "out.csv")
    assert written.read_bytes() == (data_dir / dataset.csv_name).read_bytes()
    assert export_dataset(name, tmp_path) == tmp_path / dataset.csv_name  # a folder: its own name


def test_export_into_a_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such folder"):
        export_dataset("german", tmp_path / "absent" / "german.csv")


def test_loading_by_name_equals_loading_the_shared_file(data_dir: Path) -> None:
    by_name = load_credit_csv("german", target="bad")
    by_file = load_credit_csv(data_dir / "german_credit.csv", target="bad")
    assert by_name.source == "german" and by_name.n_rows == 1000
    assert np.array_equal(by_name.y, by_file.y) and np.array_equal(by_name.ids, by_file.ids)
    assert by_name.numeric.equals(by_file.numeric) and by_name.categorical.equals(by_file.categorical)


def test_any_gzip_csv_loads(data_dir: Path, tmp_path: Path) -> None:
    packed = tmp_path / "german.csv.gz"
    packed.write_bytes(gzip.compress((data_dir / "german_credit.csv").read_bytes()))
    assert load_credit_csv(packed, target="bad").n_rows == 1000


def test_default_data_resolves_from_another_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig()
    assert cfg.data_path == DEFAULT_DATA == "uci" and cfg.target == "default_next_month"
    assert resolve_data_path(cfg.data_path).is_file()


def test_an_embedded_set_brings_its_own_target() -> None:
    assert RunConfig(data_path="german").target == "bad"
    assert RunConfig(data_path="german", target="other").target == "other"  # explicit wins
    assert RunConfig(data_path="some.csv").target == "default_next_month"
    cfg = RunConfig.from_user_config({"data-path": "german", "target": "default_next_month"})
    assert cfg.target == "bad"


def test_summaries_match_the_data_readme() -> None:
    uci, german = (summarize(d) for d in EMBEDDED_DATASETS.values())
    assert (uci.rows, uci.columns, round(uci.bad_rate, 3)) == (30000, 25, 0.221)
    assert (german.rows, german.columns, round(german.bad_rate, 3)) == (1000, 22, 0.3)


def test_an_install_without_package_data_finds_the_source_copy(tmp_path: Path) -> None:
    assert _source_folder('{"url": "file:///work/main", "dir_info": {"editable": true}}') == \
        Path("/work/main")
    assert _source_folder('{"url": "https://example.org/x.whl"}') is None
    assert _source_folder(None) is None and _source_folder("not json") is None


def test_the_wheel_ships_the_data_and_its_attribution() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = config["tool"]["setuptools"]["package-data"][PACKAGE]
    folder = REPO / Path(*PACKAGE.split("."))
    assert (folder / "__init__.py").is_file() and "README.md" in shipped
    for dataset in EMBEDDED_DATASETS.values():
        assert any(Path(dataset.file).match(pattern) for pattern in shipped)
        assert (folder / dataset.file).is_file()
    notice = (folder / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in notice and "Yeh" in notice and "Hofmann" in notice


def test_scoring_takes_an_embedded_set_by_name(tmp_path: Path, data_dir: Path,
                                               german_run_dir: Path) -> None:
    from federation.scorecard.scale import RiskGrades, ScorecardScale
    from federation.scorecard.scoring import score_file

    outputs = []
    for data in ("german", data_dir / "german_credit.csv"):
        out = tmp_path / f"{Path(data).name}.scores.csv"
        score_file(german_run_dir, data, out, scale=ScorecardScale(), grades=RiskGrades())
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_a_copy_of_the_code_without_the_data_finds_the_installed_files(tmp_path: Path,
                                                                      monkeypatch) -> None:
    """Flower's app bundle (first on sys.path under ``flwr run``) carries no .csv.gz: the
    installed distribution's files are found instead (here the editable install's source)."""
    import federation.data.embedded as embedded

    monkeypatch.setattr(embedded, "files", lambda package: tmp_path)  # a package folder, no data
    found = embedded_file(EMBEDDED_DATASETS["german"])
    assert found.is_file() and found.parent != tmp_path
