"""A local federation on an embedded data set: the name stays a name in the run config and the
parties' files are the same plain CSV as from the shared file."""

from __future__ import annotations

import gzip
from pathlib import Path

from fedcredit.deploy.launch_plan import LOCAL_DATA, LaunchOptions, Layout
from fedcredit.deploy.local_parties import BankFolder, write_bank_slices
from fedcredit.deploy.vertical_federation import VerticalLocalFederation
from federation.run.config import RunConfig


def test_the_launcher_defaults_to_the_embedded_german_set(tmp_path: Path) -> None:
    assert LOCAL_DATA == "german"
    cfg = LaunchOptions(banks=2, out=tmp_path, data_path="german", target="bad").run_config(
        Layout(tmp_path))
    assert cfg.data_path == "german" and cfg.target == "bad"  # resolves in any folder


def test_bank_slices_of_the_embedded_set_equal_those_of_the_shared_file(
    tmp_path: Path, german: Path,
) -> None:
    slices = []
    for data in ("german", str(german)):
        cfg = RunConfig(data_path=data, target="bad", banks=3, seed=2)
        banks = [BankFolder(k, tmp_path / Path(data).name / f"bank-{k}") for k in range(3)]
        slices.append([f.read_bytes() for f in write_bank_slices(cfg, banks)])
    assert slices[0] == slices[1] and slices[0][0].startswith(b"ID,")


def test_vertical_staging_writes_plain_csv_from_a_name_or_a_gzip(tmp_path: Path,
                                                                 german: Path) -> None:
    packed = tmp_path / "center.csv.gz"
    packed.write_bytes(gzip.compress(german.read_bytes()))
    options = LaunchOptions(banks=1, out=tmp_path / "run", data_path="", target="bad",
                            id_col="ID", mode="vertical", bank_data="german",
                            center_data=str(packed))
    federation = VerticalLocalFederation(options, say=lambda _: None)
    federation.prepare_banks()
    bank, center = federation.banks
    assert bank.data.read_bytes() == german.read_bytes() == center.data.read_bytes()
