"""Vertical-run handlers of the node ClientApp: the bank and the credit-center data node.

Thin: each handler unpacks a request (``federation.wire.vertical``), loads what this party kept
from earlier steps (its node state, in Flower's context), runs this party's step
(``federation.steps.vertical_party``, ``vertical_bank``, ``vertical_center``) on its own data,
stores what the step keeps and replies with what it sends: blinded points, ciphertexts, masked
values, or public results (counts, AUC/KS, IV). Secrets (private key, PSI state, batch masks)
stay in the node state. A node's role comes from its node config (``role``) or, in
simulation, from its partition id (0 = bank, 1 = center).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flwr.app import Context, Message

from clients import node_state
from clients.bank_app import app
from clients.peer_link import PeerLink
from clients.wire_recorder import recording
from federation.data.vertical_data import AlignedParty
from federation.errors import ConfigError
from federation.run.policy import check_relay_host, check_vertical_config, policy_of_node
from federation.run.vertical_config import VerticalConfig
from federation.steps import vertical_bank, vertical_center, vertical_party
from federation.steps.vertical_precompute import step_running
from federation.steps.vertical_stream import PendingUpdate, stream_epoch
from federation.wire.message_types import handles
from federation.wire.records import StepFields
from federation.wire.vertical import (
    BIN_ENCRYPT_LABELS,
    BIN_OPEN_COUNTS,
    BIN_SUM_PER_BIN,
    PSI_INITIATOR_FINISH,
    PSI_INITIATOR_START,
    PSI_RESPONDER_FINISH,
    PSI_RESPONDER_REPLY,
    ROLE_BANK,
    ROLE_CENTER,
    V_BIN,
    V_ENCRYPT,
    V_GRADIENT,
    V_OPEN,
    V_PREPARE,
    V_PSI,
    V_SCORE,
    V_SETUP,
    V_START,
    V_STREAM,
    V_UPDATE,
    Field,
    blob_fields,
    iv_fields,
    unpack_request,
    vertical_reply,
)
from protocols.vertical_lr.steps import BatchSecrets, VerticalLRState, VerticalParty


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


def _data_path(context: Context) -> str | None:
    """A deployed node's own file (node config ``data-path``); None in simulation."""
    path = context.node_config.get("data-path")
    return str(path) if path else None


def _model_dir(context: Context) -> str | None:
    """A deployed node's folder for its trained model parts (node config ``model-dir``)."""
    path = context.node_config.get("model-dir")
    return str(path) if path else None


def _unpack(msg: Message, context: Context) -> tuple[VerticalConfig, StepFields, str]:
    cfg, step = unpack_request(msg.content)
    check_vertical_config(policy_of_node(context.node_config), cfg)  # before any data is read
    return cfg, step, role_of(context)


@handles(app, V_SETUP)
def setup(msg: Message, context: Context) -> Message:
    """Load and check this party's file, make its own Paillier key pair for the run."""
    cfg, _, role = _unpack(msg, context)
    done = vertical_party.setup(cfg, role, _data_path(context))
    node_state.put(context, private_key=done.private_key)
    return vertical_reply(msg, {Field.ROLE: role, Field.ROWS: done.rows,
                                Field.PUBLIC_KEY: done.public_key})


@handles(app, V_PSI)
def psi_step(msg: Message, context: Context) -> Message:
    """ECDH-PSI: bank = initiator (stages 1, 3), center = responder (stages 2, 4)."""
    cfg, step, role = _unpack(msg, context)
    stage = step.int(Field.STAGE)
    ids = vertical_party.own_ids(cfg, role, _data_path(context))
    if role == ROLE_BANK and stage == PSI_INITIATOR_START:
        initiator, blob = vertical_bank.psi_start(ids)
        node_state.put(context, psi_state=initiator)
        return vertical_reply(msg, blob_fields(blob))
    received = step.blob(Field.BLOB)
    if role == ROLE_CENTER and stage == PSI_RESPONDER_REPLY:
        responder, blob = vertical_center.psi_reply(ids, received)
        node_state.put(context, psi_state=responder)
        return vertical_reply(msg, blob_fields(blob))
    if role == ROLE_BANK and stage == PSI_INITIATOR_FINISH:
        result, blob = vertical_bank.psi_finish(node_state.get(context, "psi_state"), received)
        node_state.put(context, positions=result.indices, psi_state=None)
        return vertical_reply(msg, {Field.BLOB: blob, Field.SIZE: result.size})
    if role == ROLE_CENTER and stage == PSI_RESPONDER_FINISH:
        result = vertical_center.psi_finish(node_state.get(context, "psi_state"), received)
        node_state.put(context, positions=result.indices, psi_state=None)
        return vertical_reply(msg, {Field.SIZE: result.size})
    raise ConfigError(f"PSI stage {stage} is not a step of the {role}.")


@handles(app, V_PREPARE)
def prepare_step(msg: Message, context: Context) -> Message:
    """Align to the intersection (ID order), split train/test, standardise own columns."""
    cfg, step, role = _unpack(msg, context)
    table = vertical_party.own_table(cfg, role, _data_path(context))
    party = vertical_party.prepare_rows(table, node_state.get(context, "positions"), role,
                                        run_id=step.text(Field.RUN_ID),
                                        test_fraction=cfg.test_fraction)
    node_state.put(context, aligned=party, run_id=step.text(Field.RUN_ID))
    return vertical_reply(msg, {Field.TRAIN_ROWS: len(party.x_train),
                                Field.TEST_ROWS: len(party.x_test),
                                Field.FEATURES: list(party.feature_names)})


@handles(app, V_START)
def start_step(msg: Message, context: Context) -> Message:
    """Agree the public LR config, take the peer's public key, start from zero weights."""
    cfg, step, role = _unpack(msg, context)
    aligned: AlignedParty = node_state.get(context, "aligned")
    party, state = vertical_party.start_training(
        cfg, role, aligned, run_id=step.text(Field.RUN_ID), rows=step.int(Field.ROWS),
        bank_features=step.int(Field.BANK_FEATURES),
        center_features=step.int(Field.CENTER_FEATURES),
        peer_public_key=step.blob(Field.PEER_PUBLIC_KEY),
        private_key=node_state.get(context, "private_key"))
    node_state.put(context, party=party, lr_state=state)
    return vertical_reply(msg, {Field.BATCHES: party.config.n_batches})


def _update(context: Context, role: str, opened: bytes) -> VerticalLRState:
    """Unmask the own gradient the peer opened, update the weights and keep them."""
    party: VerticalParty = node_state.get(context, "party")
    state: VerticalLRState = node_state.get(context, "lr_state")
    secrets: BatchSecrets = node_state.get(context, "secrets")
    state = vertical_party.apply_update(role, party, state, secrets, opened)
    node_state.put(context, lr_state=state)
    return state


Handler = Callable[[Message, Context], Message]


def _pausing(handler: Handler) -> Handler:
    """Run an LR step with this process's randomizer precomputation paused (it would share
    the interpreter with the step)."""
    @functools.wraps(handler)
    def run(msg: Message, context: Context) -> Message:
        with step_running():
            return handler(msg, context)
    return run


@handles(app, V_ENCRYPT)
@_pausing
def encrypt_step(msg: Message, context: Context) -> Message:
    """Finish the previous batch (update with the opened gradient), then phase 1 of this one."""
    _, step, role = _unpack(msg, context)
    if Field.OPENED in step:
        _update(context, role, step.blob(Field.OPENED))
    party: VerticalParty = node_state.get(context, "party")
    state: VerticalLRState = node_state.get(context, "lr_state")
    blob, secrets = vertical_party.encrypt_batch(role, party, state, epoch=step.int(Field.EPOCH),
                                                 batch=step.int(Field.BATCH))
    node_state.put(context, secrets=secrets)
    return vertical_reply(msg, blob_fields(blob))


@handles(app, V_GRADIENT)
@_pausing
def gradient_step(msg: Message, context: Context) -> Message:
    """Phase 2: masked encrypted gradient for the peer from the peer's ciphertexts."""
    _, step, role = _unpack(msg, context)
    party: VerticalParty = node_state.get(context, "party")
    secrets: BatchSecrets = node_state.get(context, "secrets")
    blob, secrets = vertical_party.masked_gradient(role, party, secrets, step.blob(Field.BLOB))
    node_state.put(context, secrets=secrets)
    return vertical_reply(msg, blob_fields(blob))


@handles(app, V_OPEN)
@_pausing
def open_step(msg: Message, context: Context) -> Message:
    """Phase 3: decrypt the peer's masked gradient with this party's key (still masked)."""
    _, step, role = _unpack(msg, context)
    party: VerticalParty = node_state.get(context, "party")
    blob = vertical_party.open_peer_gradient(role, party, step.blob(Field.BLOB),
                                             epoch=step.int(Field.EPOCH),
                                             batch=step.int(Field.BATCH))
    return vertical_reply(msg, blob_fields(blob))


@handles(app, V_STREAM)
def stream_step(msg: Message, context: Context) -> Message:
    """Transport "stream": every batch of one epoch through the coordinator's relay
    (``clients.peer_link``), the last batch's update kept for the next epoch or the final
    update. The precompute thread runs while this party waits for its peer."""
    cfg, step, role = _unpack(msg, context)
    if cfg.transport != "stream":
        raise ConfigError("the coordinator sent a peer-stream epoch for a run whose "
                          "'vertical-transport' is not \"stream\" (restart the vertical run).")
    host = step.text(Field.RELAY_HOST)
    check_relay_host(policy_of_node(context.node_config), host)
    party: VerticalParty = node_state.get(context, "party")
    state: VerticalLRState = node_state.get(context, "lr_state")
    pending = (PendingUpdate(node_state.get(context, "secrets"),
                             node_state.get(context, "pending_opened"))
               if node_state.has(context, "pending_opened") else None)
    with PeerLink(role, step.blob(Field.SESSION_KEY), host, step.int(Field.RELAY_PORT)) as link:
        state, pending = stream_epoch(role, party, state, recording(link, context),
                                      epoch=step.int(Field.EPOCH), pending=pending,
                                      computing=step_running)
    node_state.put(context, lr_state=state, secrets=pending.secrets,
                   pending_opened=pending.opened)
    return vertical_reply(msg, {Field.FRAMES: [link.sent, link.expected]})


@handles(app, V_UPDATE)
@_pausing
def update_step(msg: Message, context: Context) -> Message:
    """Phase 4 of the last batch: unmask the own gradient, update the weights, and keep the
    trained part in this party's own folder (it never leaves the node). On the stream
    transport the opened gradient came from the peer and waits in the node state."""
    cfg, step, role = _unpack(msg, context)
    state = _update(context, role, step.blob(Field.OPENED) if Field.OPENED in step
                    else node_state.get(context, "pending_opened"))
    party: VerticalParty = node_state.get(context, "party")
    part = vertical_party.trained_part(cfg, role, party, state, node_state.get(context, "aligned"))
    part.write(vertical_party.part_folder(cfg, role, data_path=_data_path(context),
                                          model_dir=_model_dir(context), run_id=part.run_id))
    return vertical_reply(msg, {Field.UPDATES: state.updates})


@handles(app, V_SCORE)
def score_step(msg: Message, context: Context) -> Message:
    """Held-out scoring: the center encrypts its partial scores under the bank's key; the
    bank adds its own part and reports AUC/KS (and the score histograms) only."""
    _, step, role = _unpack(msg, context)
    aligned: AlignedParty = node_state.get(context, "aligned")
    party: VerticalParty = node_state.get(context, "party")
    weights = node_state.get(context, "lr_state").weights
    if role == ROLE_CENTER:
        return vertical_reply(msg, blob_fields(
            vertical_center.encrypted_scores(aligned, party, weights)))
    report = vertical_bank.held_out_scores(aligned, party, weights, step.blob(Field.BLOB))
    return vertical_reply(msg, {Field.AUC: report.auc, Field.KS: report.ks,
                                Field.HIST_BAD: report.hist_bad,
                                Field.HIST_GOOD: report.hist_good,
                                Field.CAL_BAD: report.cal_bad, Field.CAL_GOOD: report.cal_good})


@handles(app, V_BIN)
def binning_step(msg: Message, context: Context) -> Message:
    """Secure WOE/IV: bank encrypts labels (1), center sums them per own bin (2), bank
    decrypts per-bin counts and returns the IV table of both parties' columns (3)."""
    cfg, step, role = _unpack(msg, context)
    stage = step.int(Field.STAGE)
    aligned: AlignedParty = node_state.get(context, "aligned")
    party: VerticalParty = node_state.get(context, "party")
    if role == ROLE_BANK and stage == BIN_ENCRYPT_LABELS:
        return vertical_reply(msg, blob_fields(vertical_bank.encrypted_labels(
            aligned, party, short_exponent=cfg.short_exponent)))
    if role == ROLE_CENTER and stage == BIN_SUM_PER_BIN:
        blob = vertical_center.label_sums_per_bin(
            aligned, party, step.blob(Field.BLOB), n_bins=cfg.bins, method=cfg.binning,
            short_exponent=cfg.short_exponent)
        _binning_done(context, cfg, aligned)
        return vertical_reply(msg, blob_fields(blob))
    if role == ROLE_BANK and stage == BIN_OPEN_COUNTS:
        iv = vertical_bank.iv_table(aligned, party, step.blob(Field.BLOB), n_bins=cfg.bins,
                                    method=cfg.binning)
        _binning_done(context, cfg, aligned)
        return vertical_reply(msg, iv_fields(iv))
    raise ConfigError(f"binning stage {stage} is not a step of the {role}.")


def _binning_done(context: Context, cfg: VerticalConfig, aligned: AlignedParty) -> None:
    """An LR party's last binning stage: keep only what scoring needs of its prepared rows
    (the node state travels with every later message)."""
    if cfg.model == "lr":
        node_state.put(context, aligned=vertical_party.kept_for_scoring(aligned))
