"""Each party's own folder for a local federation: data slice, key files, node TOML.

On one machine the launcher plays every institution, but it gives each one only what that
institution would hold in a real deployment:

* bank k: ``bank.csv`` with exactly its rows of the simulation split (train and test rows,
  in ascending original order, copied verbatim), its key folder with the public files of the
  key ceremony plus its own ``bank-<k>/``, its authentication key, the CA certificate, and a
  ``node.toml`` pointing at those files only;
* the coordinator: the public files of the key ceremony (``paillier.pub``, the signing
  registry), never a ``bank-<k>/`` folder, and no data.

Because bank k's file holds the rows of ``bank_splits(cfg)[k]`` in their original order and
the bank splits its file with the run's seed, the deployed run sees exactly the train/test
rows the simulation of the same split sees.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fedcredit.deploy.certs import write_private
from fedcredit.deploy.flower_commands import toml_value
from federation.data.bank_data import bank_splits
from federation.data.embedded import read_bytes
from federation.run.config import RunConfig, resolve_data_path
from federation.run.key_store import bank_dir, provision_simulation_keys
from federation.run.policy import (
    AGGREGATION_MODES,
    DEFAULT_MIN_CONTRIBUTORS,
    DEFAULT_POLICY,
    ENCRYPTED_MODES,
    LEAST_CONTRIBUTORS,
    TOML_KEYS,
    BankPolicy,
)
from federation.steps.secure_sum import summation_scheme


@dataclass(frozen=True, slots=True)
class BankFolder:
    """Where bank ``index`` keeps its files."""

    index: int
    root: Path

    @property
    def name(self) -> str:
        """Node name (also the name of its authentication key)."""
        return f"bank-{self.index}"

    @property
    def data(self) -> Path:
        """The bank's own rows."""
        return self.root / "bank.csv"

    @property
    def keys(self) -> Path:
        """The bank's key folder (public ceremony files + its own ``bank-<k>/``)."""
        return self.root / "keys"

    @property
    def node_toml(self) -> Path:
        """The bank's node configuration."""
        return self.root / "node.toml"

    @property
    def flwr_home(self) -> Path:
        """The SuperNode's Flower home (installed app bundles, node config)."""
        return self.root / "flwr-home"


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file (gzip-compressed or not: the embedded data sets are)."""
    text = read_bytes(path).decode("utf-8-sig")
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    if not rows:
        raise ValueError(f"{path} is empty.")
    return rows[0], rows[1:]


def write_bank_slices(cfg: RunConfig, banks: list[BankFolder]) -> list[Path]:
    """Write each bank's rows of the simulation split to its own ``bank.csv``."""
    header, body = _read_rows(resolve_data_path(cfg.data_path))
    written = []
    for split, bank in zip(bank_splits(cfg), banks, strict=True):
        rows = np.sort(np.concatenate([split.train, split.test]))
        bank.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with bank.data.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(body[int(i)] for i in rows)
        bank.data.chmod(0o600)
        written.append(bank.data)
    return written


def distribute_keys(cfg: RunConfig, ceremony: Path, coordinator_keys: Path,
                    banks: list[BankFolder]) -> None:
    """Run the banks' key ceremony, hand each party its share, delete the ceremony folder.

    Public top-level files go to every party; ``bank-<k>/`` only to bank k.
    """
    provision_simulation_keys(ceremony, cfg.banks, bits=cfg.key_bits,
                              paillier=summation_scheme(cfg.aggregation).needs_paillier_key)
    public = [p for p in ceremony.iterdir() if p.is_file()]
    for target in [coordinator_keys, *(b.keys for b in banks)]:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        for file in public:
            shutil.copy2(file, target / file.name)
    for bank in banks:
        shutil.copytree(bank_dir(ceremony, bank.index), bank_dir(bank.keys, bank.index))
    shutil.rmtree(ceremony)


def write_roster(coordinator_keys: Path, node_keys: list[Path]) -> Path:
    """The coordinator's roster: a copy of each bank's node public key in
    ``<keys>/roster/`` (:mod:`server.roster`); the coordinator sends work to these only."""
    from server.roster import ROSTER_DIR

    roster = coordinator_keys / ROSTER_DIR
    roster.mkdir(parents=True, exist_ok=True, mode=0o700)
    for key in node_keys:
        shutil.copy2(key, roster / key.name)
    return roster


def bank_policy(cfg: RunConfig, *, allow_plain: bool = False) -> BankPolicy:
    """The ``[policy]`` the launcher, as the operator of every bank, writes for them.

    Encrypted runs only unless ``allow_plain`` (the explicit ``--allow-plain`` opt-in); sums
    of at least three banks, or of every bank of a smaller run (never fewer than two); the
    final model released as the run asks; safe defaults for the rest.
    """
    modes = AGGREGATION_MODES if allow_plain else ENCRYPTED_MODES
    least = max(LEAST_CONTRIBUTORS, min(DEFAULT_MIN_CONTRIBUTORS, cfg.required_banks))
    return replace(DEFAULT_POLICY, aggregation=modes, min_contributors=least,
                   release_model=cfg.release_model)


def bank_node_toml(bank: BankFolder, cfg: RunConfig, *, coordinator: str, runtime_port: int,
                   ca_cert: Path | None, auth_key: Path | None,
                   trusted_entities: Path | None = None, allow_plain: bool = False) -> Path:
    """Write bank ``bank``'s ``node.toml`` (the file a real bank would write by hand), with
    its ``[policy]`` written out (:func:`bank_policy`)."""
    policy = bank_policy(cfg, allow_plain=allow_plain)
    sections: dict[str, dict[str, str | int | bool | list[str]]] = {
        "node": {"role": "bank", "name": bank.name, "bank-index": bank.index},
        "data": {"path": str(bank.data), "target": cfg.target},
        "keys": {"paillier-dir": str(bank.keys)},
        "coordinator": {"address": coordinator},
        "runtime": {"port": runtime_port},
        "policy": {TOML_KEYS[name]: list(value) if isinstance(value, tuple) else value
                   for name, value in (("aggregation", policy.aggregation),
                                       ("min_contributors", policy.min_contributors),
                                       ("release_model", policy.release_model),
                                       ("short_exponents", policy.short_exponents),
                                       ("min_key_bits", policy.min_key_bits))},
    }
    if cfg.id_col:
        sections["data"]["id-col"] = cfg.id_col
    if trusted_entities is not None:
        sections["keys"]["trusted-entities"] = str(trusted_entities)
    if ca_cert is None or auth_key is None:
        sections["coordinator"]["insecure"] = True
    else:
        sections["keys"].update({"root-certificates": str(ca_cert),
                                 "auth-private-key": str(auth_key)})
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in body.items())
                   + "\n" for name, body in sections.items())
    return write_private(bank.node_toml, text.encode(), force=True)


def _toml(value: str | int | bool | list[str]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_value(value)
