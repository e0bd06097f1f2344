"""SecureBoost handlers of the node ClientApp (vertical ``model = "secureboost"``).

Thin, like :mod:`clients.vertical_app`: each handler loads this party's state from its node
state, runs one step of :mod:`federation.steps.vertical_trees` and replies with what the step
sends (ciphertexts under the bank's key, the center's packed encrypted sums, split ids and row
partitions, or public results). The bank's private key and labels, the center's features and
thresholds stay on their nodes.
"""

from __future__ import annotations

from flwr.app import Context, Message

from clients import node_state
from clients.bank_app import app
from clients.vertical_app import _data_path, _model_dir, _unpack
from federation.data.vertical_data import AlignedParty
from federation.errors import ConfigError
from federation.run.tree_part import (
    TreeBankPart,
    TreeCenterPart,
    TreeModelPart,
    bank_tree_part,
    center_tree_part,
    tree_model_id,
)
from federation.run.vertical_config import VerticalConfig
from federation.steps import vertical_party, vertical_trees
from federation.steps.vertical_party import labels_of
from federation.wire.message_types import handles
from federation.wire.vertical import (
    ROLE_BANK,
    ROLE_CENTER,
    V_TREE_APPLY,
    V_TREE_DECIDE,
    V_TREE_GRAD,
    V_TREE_LEVEL,
    V_TREE_SCORE,
    V_TREE_START,
    Field,
    StepValues,
    blob_fields,
    vertical_reply,
)
from protocols.paillier.keys import key_fingerprint, public_key_from_bytes

BANK_TREES, CENTER_TREES = "bank_trees", "center_trees"


def _only(role: str, expected: str, step: str) -> None:
    if role != expected:
        raise ConfigError(f"step '{step}' is a step of the {expected}, not of the {role}.")


@handles(app, V_TREE_START)
def tree_start(msg: Message, context: Context) -> Message:
    """Center: bin its raw columns (gaps kept: learned default directions), send their number of
    split positions and which are categorical. Bank: bin its own and take the center's shape."""
    cfg, step, role = _unpack(msg, context)
    aligned: AlignedParty = node_state.get(context, "aligned")
    gbdt = cfg.gbdt_config()
    if role == ROLE_CENTER:
        center, positions = vertical_trees.center_start(
            aligned.tree_train, aligned.tree_test, gbdt.bins,
            public_key_from_bytes(step.blob(Field.PEER_PUBLIC_KEY)),
            gradient_bits=gbdt.gradient_bits, n_categories=aligned.tree_categories)
        node_state.put(context, **{CENTER_TREES: center})
        return vertical_reply(msg, {Field.POSITIONS: positions, Field.CATEGORICAL: [
            int(k > 0) for k in aligned.tree_categories]})
    bank = vertical_trees.bank_start(aligned.tree_train, aligned.tree_test,
                                     labels_of(aligned.y_train), labels_of(aligned.y_test), gbdt,
                                     node_state.get(context, "private_key"),
                                     step.counts(Field.POSITIONS),
                                     n_categories=aligned.tree_categories,
                                     center_categorical=tuple(
                                         bool(c) for c in step.counts(Field.CATEGORICAL)))
    node_state.put(context, **{BANK_TREES: bank})
    return vertical_reply(msg, {})


@handles(app, V_TREE_GRAD)
def tree_gradients(msg: Message, context: Context) -> Message:
    """Bank: start the next tree; every row's (g, h) encrypted under its own key."""
    _, _, role = _unpack(msg, context)
    _only(role, ROLE_BANK, V_TREE_GRAD.message_type)
    bank = node_state.get(context, BANK_TREES)
    blob = vertical_trees.bank_gradients(bank)
    assignment, build = vertical_trees.level_fields(bank)
    node_state.put(context, **{BANK_TREES: bank})
    return vertical_reply(msg, {Field.BLOB: blob, Field.ASSIGNMENT: assignment,
                                Field.BUILD: build})


@handles(app, V_TREE_LEVEL)
def tree_level(msg: Message, context: Context) -> Message:
    """Center: encrypted, packed sums per requested node, own feature and bin."""
    _, step, role = _unpack(msg, context)
    _only(role, ROLE_CENTER, V_TREE_LEVEL.message_type)
    center = node_state.get(context, CENTER_TREES)
    blob, count = vertical_trees.center_level(
        center, ciphertexts=step.blob(Field.BLOB) if Field.BLOB in step else None,
        assignment=step.blob(Field.ASSIGNMENT), build=step.counts(Field.BUILD))
    node_state.put(context, **{CENTER_TREES: center})
    return vertical_reply(msg, {Field.BLOB: blob, Field.COUNT: count})


@handles(app, V_TREE_DECIDE)
def tree_decide(msg: Message, context: Context) -> Message:
    """Bank: open the sums, decide the level; name the center's splits to apply."""
    _, step, role = _unpack(msg, context)
    _only(role, ROLE_BANK, V_TREE_DECIDE.message_type)
    bank = node_state.get(context, BANK_TREES)
    splits = vertical_trees.bank_decide(bank, step.blob(Field.BLOB), step.int(Field.COUNT))
    node_state.put(context, **{BANK_TREES: bank})
    return vertical_reply(msg, {Field.SPLITS: splits})


@handles(app, V_TREE_APPLY)
def tree_apply(msg: Message, context: Context) -> Message:
    """Center: record its splits, send their ids and partitions. Bank: apply them."""
    _, step, role = _unpack(msg, context)
    if role == ROLE_CENTER:
        center = node_state.get(context, CENTER_TREES)
        ids, bits = vertical_trees.center_apply(center, step.text(Field.SPLITS))
        node_state.put(context, **{CENTER_TREES: center})
        return vertical_reply(msg, {Field.SPLIT_IDS: ids, Field.BLOB: bits})
    bank = node_state.get(context, BANK_TREES)
    done = vertical_trees.bank_apply(bank, step.counts(Field.SPLIT_IDS), step.blob(Field.BLOB))
    fields: StepValues = {Field.DONE: int(done)}
    if not done:
        assignment, build = vertical_trees.level_fields(bank)
        fields |= {Field.ASSIGNMENT: assignment, Field.BUILD: build}
    node_state.put(context, **{BANK_TREES: bank})
    return vertical_reply(msg, fields)


def _keep_part(cfg: VerticalConfig, role: str, context: Context) -> None:
    """Write this party's trained part of the trees into its own folder (it never leaves the
    node; ``fedcredit models promote`` reads it): the center's splits, or the bank's trees."""
    aligned: AlignedParty = node_state.get(context, "aligned")
    if role == ROLE_CENTER:
        center = node_state.get(context, CENTER_TREES)
        part: TreeBankPart | TreeCenterPart = center_tree_part(
            center.lookup.splits, center.flags, center.edges, aligned.preprocessor)
        bank_key, splits = center.bank_key, len(center.flags)
    else:
        bank = node_state.get(context, BANK_TREES)
        part = bank_tree_part(bank.base, bank.trees, bank.center_nodes, bank.edges,
                              aligned.preprocessor)
        bank_key, splits = bank.private_key.public_key, part.n_center_splits
    run_id = str(node_state.get(context, "run_id"))  # kept by the prepare step
    model_id = tree_model_id(run_id, key_fingerprint(bank_key), splits)
    TreeModelPart(role, run_id, model_id, part).write(vertical_party.part_folder(
        cfg, role, data_path=_data_path(context), model_dir=_model_dir(context),
        run_id=run_id))


@handles(app, V_TREE_SCORE)
def tree_score(msg: Message, context: Context) -> Message:
    """Center: the branch of every test row at each of its splits. Bank: AUC/KS only. Each
    party first keeps its trained part of the trees (:func:`_keep_part`)."""
    cfg, step, role = _unpack(msg, context)
    _keep_part(cfg, role, context)
    if role == ROLE_CENTER:
        return vertical_reply(msg, blob_fields(vertical_trees.center_branches(
            node_state.get(context, CENTER_TREES))))
    report = vertical_trees.bank_score(node_state.get(context, BANK_TREES),
                                       step.blob(Field.BLOB))
    return vertical_reply(msg, {Field.AUC: report.auc, Field.KS: report.ks,
                                Field.HIST_BAD: report.hist_bad, Field.HIST_GOOD: report.hist_good,
                                Field.CAL_BAD: report.cal_bad, Field.CAL_GOOD: report.cal_good})
