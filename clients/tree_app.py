"""The bank's handlers of the boosted-tree protocol (``model = "gbdt"``), on the bank ``app``.

Thin, like :mod:`clients.bank_app`: unpack the request (``federation.wire``), call the bank's
tree steps (``federation.steps.tree_bank``) on its own rows, pack the reply. Rows, labels,
gradients and histograms never leave the node except sealed; the state blob is sealed under
the banks' shared key when the run aggregates under Paillier. Under ``secagg`` and
``paillier-secagg`` every sealed vector is masked in its SecAgg+ session (``counts:0``,
``gradients:<seq>``, :mod:`federation.steps.tree_masking`), whose keys the masking step of
:mod:`clients.bank_app` advertised and shared.
"""

from __future__ import annotations

from flwr.app import Context, Message

from clients.bank_app import _keep, _Request, app
from federation.steps.secure_sum import KIND_COUNTS, KIND_GRADIENTS, Sealed
from federation.steps.tree_bank import (
    TreeContext,
    open_tree_context,
    seal_bins,
    tree_finalize,
    tree_level,
)
from federation.steps.tree_masking import PrefixMask
from federation.wire.message_types import handles
from federation.wire.records import (
    KEY_STATS_SUM,
    layout_of,
    reply,
    reply_content,
    sealed_of,
)
from federation.wire.trees import (
    KEY_BINS_SUM,
    KEY_LEVEL_SUM,
    STEP_TREE_BINS,
    STEP_TREE_FINALIZE,
    STEP_TREE_LEVEL,
    add_release,
    add_state,
    state_of,
)
from protocols.errors import MalformedMessageError


def _sum(req: _Request, key: str) -> Sealed:
    sealed = sealed_of(req.content, key)
    if sealed is None:
        raise MalformedMessageError(f"request lacks the combined sealed '{key}'; the steps of a "
                                    "tree run came out of order.")
    return sealed


def _mask(req: _Request, context: Context, kind: str, sealed_round: int) -> PrefixMask | None:
    """The SecAgg+ mask of the session this step seals into (None when the run does not
    mask); the session was opened for an upper bound, so the vector masks a prefix."""
    mask = req.session_mask(context, kind, sealed_round)
    return None if mask is None else PrefixMask(mask.client, mask.sealed, name=mask.name)


def _context(req: _Request) -> TreeContext:
    stats_sum, bins_sum = _sum(req, KEY_STATS_SUM), _sum(req, KEY_BINS_SUM)
    return open_tree_context(req.cfg, req.data.bank, layout_of(req.step), stats_sum,
                             bins_sum, run_id=req.run_id)


@handles(app, STEP_TREE_BINS)
def tree_bins(msg: Message, context: Context) -> Message:
    """Tree step 1: sealed fine counts on the public grid and the label sums."""
    req = _Request(msg, context)
    mask = _mask(req, context, KIND_COUNTS, 0)
    sealed = seal_bins(req.cfg, req.data, layout_of(req.step), _sum(req, KEY_STATS_SUM),
                       run_id=req.run_id, mask=mask)
    _keep(context, req.run_id, mask)
    return req.signed_reply(msg, sealed, STEP_TREE_BINS, 0, req.data.train.n_rows)


@handles(app, STEP_TREE_LEVEL)
def tree_level_step(msg: Message, context: Context) -> Message:
    """Tree step 2: decide the previous level from its sums, seal this bank's next level."""
    req = _Request(msg, context)
    mask = _mask(req, context, KIND_GRADIENTS, req.round)
    out = tree_level(req.cfg, req.data, _context(req), run_id=req.run_id, seq=req.round,
                     blob=state_of(req.content), level_sum=sealed_of(req.content, KEY_LEVEL_SUM),
                     mask=mask)
    _keep(context, req.run_id, mask)
    answer = req.signed_reply(msg, out.sealed, STEP_TREE_LEVEL, req.round,
                              req.data.train.n_rows, metrics=out.metrics)
    add_state(answer.content, out.blob, req.round)
    return answer


@handles(app, STEP_TREE_FINALIZE)
def tree_finalize_step(msg: Message, context: Context) -> Message:
    """Tree step 3: the final AUC/KS and, when the run allows it, the model release."""
    req = _Request(msg, context)
    metrics, release, histograms = tree_finalize(
        req.cfg, req.data, _context(req), run_id=req.run_id, seq=req.round,
        blob=state_of(req.content), level_sum=sealed_of(req.content, KEY_LEVEL_SUM))
    content = reply_content(bank=req.data.bank, n_examples=req.data.test.n_rows, metrics=metrics,
                            released_histograms=histograms)
    if release is not None:
        add_release(content, release)
    return reply(msg, content)
