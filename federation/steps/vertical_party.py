"""Either party's side of the vertical run's common steps, as plain functions over its own data.

Setup (load and check the party's file, make its Paillier key pair for the run), prepare (align
to the PSI intersection, split, standardise its own columns), start (the agreed LR config and the
party's inputs) and the four phases of vertical logistic regression per mini-batch. Each
function returns what the step sends (a public key, serialised ciphertexts or masked values)
and what the party keeps between messages; the node app stores the latter in its node state.
The maths is in :mod:`protocols.vertical_lr.steps`; the bank-only and center-only steps are in
:mod:`federation.steps.vertical_bank` and :mod:`federation.steps.vertical_center`.

Security: semi-honest bank, center and coordinator, no collusion. What a function returns for
sending is a public key or values encrypted under a party's own key or masked; the private key,
the rows and the batch masks are in what it returns to keep, which never leaves the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
from phe.paillier import PaillierPrivateKey

from federation.data.cell_errors import wire_safe
from federation.data.table import CreditTable
from federation.data.vertical_data import AlignedParty, align, load_party, prepare
from federation.errors import DataError
from federation.run.folder import RunFolder
from federation.run.vertical_config import VerticalConfig
from federation.run.vertical_part import VerticalModelPart, vertical_model_id
from federation.steps.vertical_precompute import pooled_table
from protocols.errors import KeyMismatchError
from protocols.paillier.keys import (
    generate_paillier_keypair,
    key_fingerprint,
    public_key_from_bytes,
    public_key_to_bytes,
)
from protocols.psi.ecdh import Identifier
from protocols.vertical_lr.messages import (
    MaskedGradientValues,
    VerticalCiphertexts,
    masked_values_to_bytes,
    parse_vertical_message,
    vertical_ciphertexts_to_bytes,
)
from protocols.vertical_lr.steps import (
    ROLE_BANK,
    BatchSecrets,
    VerticalLRConfig,
    VerticalLRState,
    VerticalParty,
    bank_gradient_step,
    bank_open_center_gradient,
    bank_residual_step,
    bank_update_step,
    center_gradient_step,
    center_open_bank_gradient,
    center_partial_step,
    center_update_step,
    initial_state,
    make_bank_party,
    make_center_party,
)


@dataclass(frozen=True, slots=True)
class PartySetup:
    """Setup of one party: its row count and public key (sent) and its private key (kept)."""

    rows: int
    public_key: bytes
    private_key: PaillierPrivateKey = field(repr=False)


def own_table(cfg: VerticalConfig, role: str, data_path: str | None = None) -> CreditTable:
    """This party's file, checked: ``data_path`` (a deployed node's own file) or, in
    simulation, the config's file for ``role``. Only the bank's file is read with labels."""
    path = data_path or (cfg.bank_data if role == ROLE_BANK else cfg.center_data)
    try:
        return load_party(str(path), id_col=cfg.id_col,
                          target=cfg.target if role == ROLE_BANK else None,
                          positive_label=cfg.positive_label or None)
    except DataError as exc:
        if data_path is None:  # a simulation: the researcher's own files, shown in full
            raise
        raise wire_safe(exc, data_path, f"the {role}'s data file") from None  # leaves the node


def own_ids(cfg: VerticalConfig, role: str, data_path: str | None = None) -> list[Identifier]:
    """The entity keys of this party's file, in file order (the PSI input)."""
    ids = own_table(cfg, role, data_path).ids
    if ids is None:  # load_party refuses such a file already
        raise DataError("this party's file has no ID column; vertical runs need the entity key.")
    return list(ids)


def setup(cfg: VerticalConfig, role: str, data_path: str | None = None) -> PartySetup:
    """Load and check this party's file, make its own Paillier key pair for the run."""
    table = own_table(cfg, role, data_path)
    public_key, private_key = generate_paillier_keypair(cfg.key_bits)
    return PartySetup(table.n_rows, public_key_to_bytes(public_key), private_key)


def prepare_rows(table: CreditTable, positions: Sequence[int], role: str, *, run_id: str,
                 test_fraction: float) -> AlignedParty:
    """Align to the intersection (ID order), split train/test by a keyed hash of the ID with
    ``run_id`` (both parties agree without talking), standardise own columns on own rows."""
    aligned = align(table, np.asarray(positions, dtype=np.int64))
    return prepare(aligned, role, run_salt=run_id, test_fraction=test_fraction)


def kept_for_scoring(aligned: AlignedParty) -> AlignedParty:
    """What an LR party keeps of its prepared rows once binning is done: its held-out rows
    and its preprocessor (the training rows are in its :class:`VerticalParty` already).

    Flower hands a node's whole state to every message (in simulation through Ray, both
    ways), so the training table and the tree matrices, about 10 MB on UCI, would travel
    three times per mini-batch for nothing.
    """
    empty = np.arange(0)
    return replace(aligned, x_train=aligned.x_train[empty],
                   y_train=None if aligned.y_train is None else aligned.y_train[empty],
                   train_table=aligned.train_table.subset(empty),
                   tree_train=aligned.tree_train[empty], tree_test=aligned.tree_test[empty])


def labels_of(labels: np.ndarray | None) -> np.ndarray:
    """The bank's labels of its prepared rows (its file is always read with its target)."""
    if labels is None:
        raise DataError("the bank's prepared rows carry no labels; its file needs the target "
                        "column.")
    return labels


def start_training(cfg: VerticalConfig, role: str, aligned: AlignedParty, *, run_id: str,
                   rows: int, bank_features: int, center_features: int,
                   private_key: PaillierPrivateKey,
                   peer_public_key: bytes) -> tuple[VerticalParty, VerticalLRState]:
    """The public LR config both parties agree, this party's inputs (own training rows, own
    key, the peer's public key) and its starting weights (zero).

    Raises
    ------
    KeyMismatchError
        The peer's Paillier modulus is shorter than the run's ``vertical-key-bits`` (which
        this party's policy has checked): a deviating peer cannot lower the key size.
    """
    config = VerticalLRConfig(run_id, rows, bank_features, center_features, cfg.batch_size,
                              cfg.learning_rate, cfg.l2, cfg.seed)
    peer = public_key_from_bytes(peer_public_key)
    if peer.n.bit_length() < cfg.key_bits:
        raise KeyMismatchError(f"the peer's Paillier key has {peer.n.bit_length()} bits, fewer "
                               f"than the run's vertical-key-bits = {cfg.key_bits}; the peer "
                               "must generate its key at the run's size.")
    if role == ROLE_BANK:
        party = make_bank_party(aligned.x_train, labels_of(aligned.y_train), config=config,
                                private_key=private_key, peer_public_key=peer,
                                short_exponent=cfg.short_exponent)
    else:
        party = make_center_party(aligned.x_train, config=config, private_key=private_key,
                                  peer_public_key=peer, short_exponent=cfg.short_exponent)
    return party, initial_state(party)


def received_ciphertexts(blob: bytes) -> VerticalCiphertexts:
    """A peer's ciphertexts, parsed for structure only: the protocol step that takes them
    checks their type, kind, key, run, batch and length."""
    return cast(VerticalCiphertexts, parse_vertical_message(blob))


def received_opened(blob: bytes) -> MaskedGradientValues:
    """The own gradient as the peer opened it, parsed for structure only (the update step
    checks the rest)."""
    return cast(MaskedGradientValues, parse_vertical_message(blob))


def encrypt_batch(role: str, party: VerticalParty, state: VerticalLRState, *, epoch: int,
                  batch: int) -> tuple[bytes, BatchSecrets]:
    """LR phase 1: the bank's ``[[d_B]]_B`` or the center's ``[[u_C]]_C`` for the batch rows,
    and the secrets to keep for the batch. The encryption randomness comes first from this
    process's pool, drawn while it waited (:mod:`federation.steps.vertical_precompute`)."""
    first = bank_residual_step if role == ROLE_BANK else center_partial_step
    table = None if party.short_exponent else pooled_table(  # full-length exponents only
        party.private_key, rows=-(-party.config.n_rows // party.config.n_batches))
    out, secrets = first(party, state, epoch=epoch, batch=batch, table=table)
    return vertical_ciphertexts_to_bytes(out), secrets


def masked_gradient(role: str, party: VerticalParty, secrets: BatchSecrets,
                    received: bytes) -> tuple[bytes, BatchSecrets]:
    """LR phase 2: the peer's gradient sums, encrypted under the peer's key and masked, from
    the peer's phase-1 ciphertexts; the secrets now hold the masks."""
    second = bank_gradient_step if role == ROLE_BANK else center_gradient_step
    out, secrets = second(party, secrets, received_ciphertexts(received))
    return vertical_ciphertexts_to_bytes(out), secrets


def open_peer_gradient(role: str, party: VerticalParty, received: bytes, *, epoch: int,
                       batch: int) -> bytes:
    """LR phase 3: decrypt the peer's masked gradient with this party's key (still masked)."""
    third = bank_open_center_gradient if role == ROLE_BANK else center_open_bank_gradient
    return masked_values_to_bytes(third(party, received_ciphertexts(received), epoch=epoch,
                                        batch=batch))


def apply_update(role: str, party: VerticalParty, state: VerticalLRState,
                 secrets: BatchSecrets, opened: bytes) -> VerticalLRState:
    """LR phase 4: unmask the own gradient the peer opened and update the own weights."""
    step = bank_update_step if role == ROLE_BANK else center_update_step
    return step(party, state, secrets, received_opened(opened))


MODEL_DIR_NAME = "fedcredit-models"
"""A deployed node's default model folder, beside its own data file."""


def trained_part(cfg: VerticalConfig, role: str, party: VerticalParty, state: VerticalLRState,
                 aligned: AlignedParty) -> VerticalModelPart:
    """This party's trained weights and its own standardisation, as it keeps them (issue 15).

    The model id comes from what both parties know (run id, both public keys, the number of
    updates), so the bank's and the center's parts carry the same one.
    """
    own, peer = key_fingerprint(party.public_key), key_fingerprint(party.peer_public_key)
    bank_key, center_key = (own, peer) if role == ROLE_BANK else (peer, own)
    run_id = party.config.run_id
    return VerticalModelPart(role, run_id, vertical_model_id(run_id, bank_key, center_key,
                                                             state.updates),
                             tuple(float(w) for w in state.weights), aligned.preprocessor,
                             state.updates, target=cfg.target if role == ROLE_BANK else "",
                             id_column=cfg.id_col)


def part_folder(cfg: VerticalConfig, role: str, *, data_path: str | None,
                model_dir: str | None, run_id: str) -> Path:
    """Where this party keeps its part: a deployed node under its ``model-dir`` (node config;
    default ``fedcredit-models/`` beside its own data file) in a folder per run; a simulation
    under the run folder's ``parties/ROLE/``."""
    if data_path is None and not model_dir:
        return RunFolder(Path(cfg.out)).party(role)
    base = Path(model_dir) if model_dir else Path(str(data_path)).parent / MODEL_DIR_NAME
    return base / run_id
