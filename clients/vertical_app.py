"""Vertical-run handlers of the node ClientApp: the bank and the credit-center data node.

Each handler unpacks a request, runs this party's protocol step (``protocols.psi.ecdh``,
``protocols.vertical_lr.steps``, ``protocols.vertical_lr.scoring``, ``protocols.woe.secure_binning``) on
its own data, keeps its secrets in the node state and replies with what the step sends:
blinded or double-blinded points, ciphertexts, masked values, or public results (counts,
AUC/KS, IV). A node's role comes from its node config (``role``) or, in simulation, from its
partition id (0 = bank, 1 = center).
"""

from __future__ import annotations

import json
from typing import Any

from flwr.app import Context, Message

from clients import node_state
from clients.bank_app import app
from federation.errors import ConfigError
from federation.wire.records import StepFields
from federation.wire.vertical import ROLE_BANK, ROLE_CENTER, unpack_request, vertical_reply
from federation.ml.metrics import ks_statistic, roc_auc, score_histograms
from federation.run.vertical_config import VerticalConfig
from federation.data.vertical_data import align, load_party, prepare
from protocols.psi import ecdh as psi
from protocols.paillier.keys import generate_paillier_keypair, public_key_from_bytes, public_key_to_bytes
from protocols.vertical_lr.steps import (
    VerticalLRConfig, bank_gradient_step, bank_open_center_gradient, bank_residual_step,
    bank_update_step, center_gradient_step, center_open_bank_gradient, center_partial_step,
    center_update_step, initial_state, make_bank_party, make_center_party,
)
from protocols.vertical_lr.messages import (
    masked_values_to_bytes, parse_vertical_message, vertical_ciphertexts_to_bytes,
)
from protocols.vertical_lr.scoring import bank_score_step, center_score_step, sigmoid
from protocols.woe.secure_binning import (
    decrypt_bin_counts, encrypt_labels, encrypted_bin_counts_from_bytes,
    encrypted_bin_counts_to_bytes, encrypted_labels_from_bytes, encrypted_labels_to_bytes,
    sum_labels_per_bin,
)
from federation.ml.vertical_binning import bin_table, iv_from_counts, local_iv



def role_of(context: Context) -> str:
    """This node's role in a vertical run."""
    node = context.node_config
    if "role" in node:
        role = str(node["role"])
    elif "partition-id" in node:
        role = ROLE_BANK if int(node["partition-id"]) == 0 else ROLE_CENTER
    else:
        raise ConfigError("node config has no 'role' (bank or center).")
    if role not in (ROLE_BANK, ROLE_CENTER):
        raise ConfigError(f"node config 'role' is '{role}'; use 'bank' or 'center'.")
    return role


def _unpack(msg: Message, context: Context) -> tuple[VerticalConfig, StepFields, str]:
    cfg, step = unpack_request(msg.content)
    return cfg, step, role_of(context)


def _own_file(cfg: VerticalConfig, role: str, context: Context) -> Any:
    path = context.node_config.get("data-path") or (
        cfg.bank_data if role == ROLE_BANK else cfg.center_data)
    return load_party(str(path), id_col=cfg.id_col,
                      target=cfg.target if role == ROLE_BANK else None,
                      positive_label=cfg.positive_label or None)


@app.query("v_setup")
def setup(msg: Message, context: Context) -> Message:
    """Load and check this party's file, make its own Paillier key pair for the run."""
    cfg, _, role = _unpack(msg, context)
    table = _own_file(cfg, role, context)
    public_key, private_key = generate_paillier_keypair(cfg.key_bits)
    node_state.put(context, private_key=private_key)
    return vertical_reply(msg, role=role, rows=table.n_rows,
                          public_key=public_key_to_bytes(public_key))


@app.query("v_psi")
def psi_step(msg: Message, context: Context) -> Message:
    """ECDH-PSI: bank = initiator (stages 1, 3), center = responder (stages 2, 4)."""
    cfg, step, role = _unpack(msg, context)
    stage = step.int("stage")
    ids = list(_own_file(cfg, role, context).ids)
    if role == ROLE_BANK and stage == 1:
        state, out = psi.initiator_start(ids, psi.new_psi_session(), workers=1)
        node_state.put(context, psi_state=state)
        return vertical_reply(msg, blob=psi.psi_message_to_bytes(out))
    received = psi.psi_message_from_bytes(step.blob("blob"))
    if role == ROLE_CENTER and stage == 2:
        state, out = psi.responder_reply(ids, received, workers=1)
        node_state.put(context, psi_state=state)
        return vertical_reply(msg, blob=psi.psi_message_to_bytes(out))
    if role == ROLE_BANK and stage == 3:
        result, out = psi.initiator_finish(node_state.get(context, "psi_state"), received,
                                           workers=1)
        node_state.put(context, positions=result.indices)
        return vertical_reply(msg, blob=psi.psi_message_to_bytes(out), size=result.size)
    if role == ROLE_CENTER and stage == 4:
        result = psi.responder_finish(node_state.get(context, "psi_state"), received)
        node_state.put(context, positions=result.indices)
        return vertical_reply(msg, size=result.size)
    raise ConfigError(f"PSI stage {stage} is not a step of the {role}.")


@app.query("v_prepare")
def prepare_step(msg: Message, context: Context) -> Message:
    """Align to the intersection (ID order), split train/test, standardise own columns."""
    cfg, step, role = _unpack(msg, context)
    table = align(_own_file(cfg, role, context), node_state.get(context, "positions"))
    party = prepare(table, role, run_salt=step.text("run-id"), test_fraction=cfg.test_fraction)
    node_state.put(context, aligned=party)
    return vertical_reply(msg, train_rows=len(party.x_train), test_rows=len(party.x_test),
                          features=list(party.feature_names))


@app.query("v_start")
def start_step(msg: Message, context: Context) -> Message:
    """Agree the public LR config, take the peer's public key, start from zero weights."""
    cfg, step, role = _unpack(msg, context)
    aligned = node_state.get(context, "aligned")
    config = VerticalLRConfig(step.text("run-id"), step.int("rows"), step.int("bank-features"),
                              step.int("center-features"), cfg.batch_size, cfg.learning_rate,
                              cfg.l2, cfg.seed)
    peer = public_key_from_bytes(step.blob("peer-public-key"))
    key = node_state.get(context, "private_key")
    if role == ROLE_BANK:
        party = make_bank_party(aligned.x_train, aligned.y_train, config=config, private_key=key,
                                peer_public_key=peer, short_exponent=cfg.short_exponent)
    else:
        party = make_center_party(aligned.x_train, config=config, private_key=key,
                                  peer_public_key=peer, short_exponent=cfg.short_exponent)
    node_state.put(context, party=party, lr_state=initial_state(party))
    return vertical_reply(msg, batches=config.n_batches)


def _update(context: Context, role: str, opened: bytes) -> None:
    party, state = node_state.get(context, "party"), node_state.get(context, "lr_state")
    secrets = node_state.get(context, "secrets")
    step = bank_update_step if role == ROLE_BANK else center_update_step
    node_state.put(context, lr_state=step(party, state, secrets, parse_vertical_message(opened)))


@app.train("v_encrypt")
def encrypt_step(msg: Message, context: Context) -> Message:
    """Finish the previous batch (update with the opened gradient), then phase 1 of this one."""
    _, step, role = _unpack(msg, context)
    if "opened" in step:
        _update(context, role, step.blob("opened"))
    party, state = node_state.get(context, "party"), node_state.get(context, "lr_state")
    first = bank_residual_step if role == ROLE_BANK else center_partial_step
    out, secrets = first(party, state, epoch=step.int("epoch"), batch=step.int("batch"))
    node_state.put(context, secrets=secrets)
    return vertical_reply(msg, blob=vertical_ciphertexts_to_bytes(out))


@app.train("v_gradient")
def gradient_step(msg: Message, context: Context) -> Message:
    """Phase 2: masked encrypted gradient for the peer from the peer's ciphertexts."""
    _, step, role = _unpack(msg, context)
    party, secrets = node_state.get(context, "party"), node_state.get(context, "secrets")
    second = bank_gradient_step if role == ROLE_BANK else center_gradient_step
    out, secrets = second(party, secrets, parse_vertical_message(step.blob("blob")))
    node_state.put(context, secrets=secrets)
    return vertical_reply(msg, blob=vertical_ciphertexts_to_bytes(out))


@app.train("v_open")
def open_step(msg: Message, context: Context) -> Message:
    """Phase 3: decrypt the peer's masked gradient with this party's key (still masked)."""
    _, step, role = _unpack(msg, context)
    party = node_state.get(context, "party")
    third = bank_open_center_gradient if role == ROLE_BANK else center_open_bank_gradient
    out = third(party, parse_vertical_message(step.blob("blob")), epoch=step.int("epoch"),
                batch=step.int("batch"))
    return vertical_reply(msg, blob=masked_values_to_bytes(out))


@app.train("v_update")
def update_step(msg: Message, context: Context) -> Message:
    """Phase 4 of the last batch: unmask the own gradient and update the weights."""
    _, step, role = _unpack(msg, context)
    _update(context, role, step.blob("opened"))
    return vertical_reply(msg, updates=node_state.get(context, "lr_state").updates)


@app.query("v_score")
def score_step(msg: Message, context: Context) -> Message:
    """Held-out scoring: the center encrypts its partial scores under the bank's key; the
    bank adds its own part and reports AUC/KS (and the score histograms) only."""
    _, step, role = _unpack(msg, context)
    aligned, party = node_state.get(context, "aligned"), node_state.get(context, "party")
    weights = node_state.get(context, "lr_state").weights
    run_id = party.config.run_id
    if role == ROLE_CENTER:
        out = center_score_step(aligned.x_test, weights, bank_public_key=party.peer_public_key,
                                run_id=run_id)
        return vertical_reply(msg, blob=vertical_ciphertexts_to_bytes(out))
    logits = bank_score_step(aligned.x_test, weights, parse_vertical_message(step.blob("blob")),
                             private_key=party.private_key, run_id=run_id)
    p = sigmoid(logits)
    bad, good = score_histograms(aligned.y_test, p)
    return vertical_reply(msg, auc=roc_auc(aligned.y_test, p), ks=ks_statistic(aligned.y_test, p),
                          hist_bad=[int(v) for v in bad], hist_good=[int(v) for v in good])


@app.query("v_bin")
def binning_step(msg: Message, context: Context) -> Message:
    """Secure WOE/IV: bank encrypts labels (1), center sums them per own bin (2), bank
    decrypts per-bin counts and returns the IV table of both parties' columns (3)."""
    cfg, step, role = _unpack(msg, context)
    stage = step.int("stage")
    aligned, party = node_state.get(context, "aligned"), node_state.get(context, "party")
    run_id, rows = party.config.run_id, party.config.n_rows
    if role == ROLE_BANK and stage == 1:
        labels = encrypt_labels(aligned.y_train, public_key=party.public_key, run_id=run_id,
                                short_exponent=cfg.short_exponent)
        return vertical_reply(msg, blob=encrypted_labels_to_bytes(labels))
    if role == ROLE_CENTER and stage == 2:
        labels = encrypted_labels_from_bytes(step.blob("blob"), public_key=party.peer_public_key,
                                             run_id=run_id, n_rows=rows)
        bins = bin_table(aligned.train_table, n_bins=cfg.bins, method=cfg.binning)
        counts = sum_labels_per_bin(labels, bins, bank_public_key=party.peer_public_key,
                                    run_id=run_id, short_exponent=cfg.short_exponent)
        return vertical_reply(msg, blob=encrypted_bin_counts_to_bytes(counts))
    if role == ROLE_BANK and stage == 3:
        counts = encrypted_bin_counts_from_bytes(step.blob("blob"), public_key=party.public_key,
                                                 run_id=run_id)
        opened = decrypt_bin_counts(counts, private_key=party.private_key, run_id=run_id,
                                    n_rows=rows)
        iv = local_iv(aligned.train_table, aligned.y_train, n_bins=cfg.bins, method=cfg.binning)
        iv.update({name: iv_from_counts(bad, good) for name, (bad, good) in opened.items()})
        return vertical_reply(msg, iv_json=json.dumps(iv))
    raise ConfigError(f"binning stage {stage} is not a step of the {role}.")
