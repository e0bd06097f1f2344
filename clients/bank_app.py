"""Bank node ClientApp: answers the coordinator with sealed aggregates of its own rows.

Thin: every handler unpacks the request (``federation.wire.records``), calls the bank's protocol
steps (``federation.steps.horizontal_bank``) on the bank's own data, and packs the reply. Rows, labels
and IDs never leave this node; under Paillier aggregation nothing but ciphertexts and the
global AUC/KS does, until the final model release the run config allows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from clients import node_state
from clients.sum_checks import check_sums
from clients.wire_recorder import record_wire_mod
from federation.data.bank_data import BankData, bank_data, bank_data_from_file
from federation.data.quality import assert_ready
from federation.errors import ConfigError
from federation.ml.preprocess import local_schema
from federation.run.config import RunConfig
from federation.run.key_store import (
    check_bank_signing,
    load_public_key,
    load_signing_key,
    require_signing_registry,
)
from federation.run.policy import (
    BankPolicy,
    PolicyRefusal,
    check_contributors,
    check_run_config,
    policy_of_node,
)
from federation.steps.horizontal_bank import (
    check_not_dropped,
    histogram_metrics,
    local_update,
    masked_count_bound,
    open_preprocessing,
    open_released_histograms,
    open_weights,
    seal_stats,
    sealed_histograms,
    sealed_length,
    sign_sealed,
    witness_audit_head,
)
from federation.steps.masking import (
    SessionMask,
    check_attestations,
    close_session,
    envelopes,
    live_client,
    mask_modulus,
    open_session,
    plaintext_count,
    session_config,
    share_keys,
    sign_advert,
    sign_survivors,
)
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_STATS,
    KIND_WEIGHTS,
    Sealed,
    bank_summation,
    summation_scheme,
)
from federation.wire.message_types import MessageType, handles
from federation.wire.records import (
    KEY_HIST_SUM,
    KEY_STATS_SUM,
    KEY_WEIGHTS_SUM,
    STEP_EVALUATE,
    STEP_FINALIZE,
    STEP_SCHEMA,
    STEP_STATS,
    STEP_TRAIN,
    SignatureClaim,
    audit_head_of,
    layout_of,
    reply,
    reply_content,
    rows_of,
    run_config_of,
    sealed_of,
    step_of,
)
from federation.wire.secagg import (
    STEP_SECAGG,
    MaskingBundle,
    bundle_of,
    parse_session,
    session_name,
    with_bundle,
)
from protocols.errors import MalformedMessageError, ProtocolError
from protocols.secagg.client import MaskingClient
from protocols.secagg.messages import (
    UnmaskRequest,
    message_from_bytes,
    message_to_bytes,
    survivors_from_bytes,
)

app = ClientApp(mods=[record_wire_mod])  # records only when the node config asks


def own_data(cfg: RunConfig, context: Context) -> BankData:
    """This node's rows.

    Deployment: the node config names the bank's own file (``data-path``) and its index
    (``bank-index``); its key folder (``keys-dir``) must hold its signing key and the
    registry. Simulation: partition ``partition-id`` of the configured data set.
    """
    node = context.node_config
    if "data-path" in node:
        if "bank-index" not in node:
            raise ConfigError("node config has 'data-path' but no 'bank-index'; set both.")
        # fail closed: a deployed bank without its signing key and the registry never runs
        check_bank_signing(str(node.get("keys-dir", "")), int(node["bank-index"]))
        return bank_data_from_file(str(node["data-path"]), cfg, int(node["bank-index"]))
    if "partition-id" not in node:
        raise ConfigError(
            "this node has neither 'data-path' nor 'partition-id' in its node config; start "
            "a bank node with its own data file (see docs/deployment.md)."
        )
    return bank_data(cfg, int(node["partition-id"]))


def node_settings(cfg: RunConfig, context: Context) -> RunConfig:
    """Node-local overrides of the run config: a deployed bank's own key folder and the
    column names of its own file (``keys-dir``, ``target``, ``id-col`` from its node.toml)."""
    node = context.node_config
    if not any(node.get(key) for key in ("keys-dir", "target", "id-col")):
        return cfg

    def setting(key: str, current: str) -> str:
        return str(node[key]) if node.get(key) else current

    return replace(cfg, keys_dir=setting("keys-dir", cfg.keys_dir),
                   target=setting("target", cfg.target), id_col=setting("id-col", cfg.id_col))


def accepted_settings(msg: Message, context: Context) -> tuple[RunConfig, BankPolicy]:
    """The request's run config with this node's overrides, once this node's policy accepts it.

    Runs before any data is read: the policy comes from the node's own config
    (:func:`~federation.run.policy.policy_of_node`), never from the request; under Paillier
    the banks' public key file must have at least ``min-key-bits`` bits.

    Raises
    ------
    PolicyRefusal
        One line naming the run-config setting the policy refuses.
    """
    cfg = node_settings(run_config_of(msg.content), context)
    policy = policy_of_node(context.node_config)
    check_run_config(policy, cfg)
    if summation_scheme(cfg.aggregation).needs_paillier_key:
        if "data-path" in context.node_config and not context.node_config.get("keys-dir"):
            raise PolicyRefusal("this bank's node.toml has no '[keys] paillier-dir', and a "
                                "deployed bank never takes its key folder from the run config "
                                "('keys-dir'); set paillier-dir to the bank's key-ceremony "
                                "folder.")
        load_public_key(cfg.keys_dir, min_bits=policy.min_key_bits)
    return cfg, policy


class _Request:
    """The parts of a request every handler needs."""

    def __init__(self, msg: Message, context: Context) -> None:
        self.cfg, self.policy = accepted_settings(msg, context)
        self.step = step_of(msg.content)
        check_sums(msg.content, self.policy, context)
        self.run_id = self.step.run_id
        self.round = self.step.round
        self.data = own_data(self.cfg, context)
        self.summation = bank_summation(self.cfg, self.data.bank)  # once per request
        self.content = msg.content
        self.node_id = context.node_id
        witness_audit_head(self.cfg, self.data.bank, audit_head_of(msg.content),
                           node_id=self.node_id)

    def preprocessing(self) -> tuple[Any, float]:
        stats_sum = sealed_of(self.content, KEY_STATS_SUM)
        if stats_sum is None:
            raise MalformedMessageError(f"request lacks the combined sealed stats "
                                        f"('{KEY_STATS_SUM}'); the preprocessing step comes first.")
        return open_preprocessing(self.cfg, self.data.bank, layout_of(self.step), stats_sum,
                                  run_id=self.run_id)

    def weights(self, prep: Any) -> list:
        return open_weights(self.cfg, self.data.bank, prep,
                            sealed_of(self.content, KEY_WEIGHTS_SUM), run_id=self.run_id,
                            round_index=self.round, rows=rows_of(self.content),
                            total_rows=self.preprocessing()[1], summation=self.summation)

    def claim(self, sealed: Sealed, step: MessageType, round_index: int) -> SignatureClaim:
        """The bank's signature over ``sealed`` for ``step`` of ``round_index``."""
        return sign_sealed(self.cfg, self.data.bank, sealed, run_id=self.run_id,
                           step=step.message_type, round_index=round_index,
                           node_id=self.node_id, summation=self.summation)

    def signed_reply(self, msg: Message, sealed: Sealed, step: MessageType, round_index: int,
                     n_examples: int, metrics: dict[str, Any] | None = None,
                     evaluation: tuple[Sealed, SignatureClaim] | None = None) -> Message:
        """Reply with the sealed vector and the bank's signature over it (for ``step``)."""
        return reply(msg, reply_content(bank=self.data.bank, n_examples=n_examples,
                                        sealed=sealed, signature=self.claim(sealed, step,
                                                                            round_index),
                                        metrics=metrics, evaluation=evaluation))

    def session_mask(self, context: Context, kind: str, sealed_round: int) -> SessionMask | None:
        """The SecAgg+ mask of the session summing this step's vector (None when the run
        does not mask): this bank's session keys and the envelopes the request routed to it."""
        if not summation_scheme(self.cfg.aggregation).masked:
            return None
        name = session_name(kind, sealed_round)
        blobs = bundle_of(self.content).envelopes.get(name)
        if blobs is None:
            raise MalformedMessageError(f"request lacks the share envelopes of masking session "
                                        f"'{name}'; the masking steps come first.")
        return SessionMask(_session(context, self.run_id, name), envelopes(blobs), name=name)

    def metrics(self) -> dict[str, Any]:
        hist_sum = sealed_of(self.content, KEY_HIST_SUM)
        if hist_sum is None:
            return {}
        return histogram_metrics(self.cfg, self.data.bank, hist_sum, run_id=self.run_id,
                                 round_index=self.step.histograms_round, total_rows=self.preprocessing()[1],
                                 summation=self.summation)


@handles(app, STEP_SCHEMA)
def schema(msg: Message, context: Context) -> Message:
    """Preprocessing step 1: column kinds and category names only."""
    cfg, _ = accepted_settings(msg, context)
    data = own_data(cfg, context)
    assert_ready(data.train)  # the same quality gate as `fedcredit check`
    return reply(msg, reply_content(bank=data.bank, n_examples=data.train.n_rows,
                                    schema=local_schema(data.train)))


@handles(app, STEP_STATS)
def stats(msg: Message, context: Context) -> Message:
    """Preprocessing step 2: sealed counts, sums, sums of squares, category counts."""
    req = _Request(msg, context)
    mask = req.session_mask(context, KIND_STATS, 0)
    sealed = seal_stats(req.cfg, req.data, layout_of(req.step), run_id=req.run_id, mask=mask)
    _keep(context, req.run_id, mask)
    return req.signed_reply(msg, sealed, STEP_STATS, 0, req.data.train.n_rows)


@handles(app, STEP_TRAIN)
def train(msg: Message, context: Context) -> Message:
    """Open the global model, train locally, seal the weighted update (+ the AUC/KS of the
    histograms the request carries). A request that asks ``evaluate`` also gets the score
    histograms of the model it carries, sealed and signed apart (that round's evaluation,
    in the same exchange)."""
    req = _Request(msg, context)
    check_not_dropped(req.cfg, req.data.bank, req.round + 1)
    prep, total_rows = req.preprocessing()
    weights = req.weights(prep)
    evaluation = None
    if req.step.evaluate:
        eval_mask = req.session_mask(context, KIND_COUNTS, req.round)
        histograms = sealed_histograms(req.cfg, req.data, prep, weights, run_id=req.run_id,
                                       round_index=req.round - 1, mask=eval_mask,
                                       total_rows=total_rows, summation=req.summation)
        _keep(context, req.run_id, eval_mask)
        evaluation = (histograms, req.claim(histograms, STEP_EVALUATE, req.round))
    mask = req.session_mask(context, KIND_WEIGHTS, req.round + 1)
    sealed = local_update(req.cfg, req.data, prep, total_rows, weights,
                          run_id=req.run_id, round_index=req.round, mask=mask,
                          summation=req.summation)
    _keep(context, req.run_id, mask)
    return req.signed_reply(msg, sealed, STEP_TRAIN, req.round + 1, req.data.train.n_rows,
                            metrics=req.metrics(), evaluation=evaluation)


@handles(app, STEP_EVALUATE)
def evaluate(msg: Message, context: Context) -> Message:
    """Score the bank's test rows with the new global model; seal the score histograms (+ the
    AUC/KS of the histograms the request carries, if any)."""
    req = _Request(msg, context)
    check_not_dropped(req.cfg, req.data.bank, req.round)
    prep, total_rows = req.preprocessing()
    mask = req.session_mask(context, KIND_COUNTS, req.round)
    sealed = sealed_histograms(req.cfg, req.data, prep, req.weights(prep), run_id=req.run_id,
                               round_index=req.round - 1, mask=mask, total_rows=total_rows,
                               summation=req.summation)
    _keep(context, req.run_id, mask)
    return req.signed_reply(msg, sealed, STEP_EVALUATE, req.round, req.data.test.n_rows,
                            metrics=req.metrics())


@handles(app, STEP_FINALIZE)
def finalize(msg: Message, context: Context) -> Message:
    """Last round's AUC/KS and, when the run allows it, the final model release."""
    req = _Request(msg, context)
    prep, total_rows = req.preprocessing()
    release = (req.weights(prep), prep) if req.cfg.release_model else None
    hist_sum = sealed_of(req.content, KEY_HIST_SUM)
    histograms = (open_released_histograms(req.cfg, req.data.bank, hist_sum, run_id=req.run_id,
                                           round_index=req.step.histograms_round,
                                           total_rows=total_rows)
                  if req.cfg.release_model and hist_sum is not None else None)
    return reply(msg, reply_content(bank=req.data.bank, n_examples=req.data.test.n_rows,
                                    metrics=req.metrics(), release=release,
                                    released_histograms=histograms))


def _session_key(run_id: str, name: str) -> str:
    """Node-state name of this bank's masking client for session ``name`` of a run."""
    return f"secagg/{run_id}/{name}"


def _session(context: Context, run_id: str, name: str) -> MaskingClient:
    """This bank's live client of session ``name`` (MaskingRefusedError once it is closed)."""
    return live_client(node_state.get(context, _session_key(run_id, name)), name)


def _keep(context: Context, run_id: str, mask: SessionMask | None) -> None:
    """Store a session's client after masking (it now refuses to mask again)."""
    if mask is not None:
        node_state.put(context, **{_session_key(run_id, mask.name): mask.client})


@handles(app, STEP_SECAGG)
def secagg(msg: Message, context: Context) -> Message:
    """SecAgg+ steps 0, 1 and 3 of the sessions the request names: advertise fresh keys,
    share them with the neighbours among the forwarded adverts, reveal the shares the unmask
    request asks for (only with at least ``min-contributors`` survivors)."""
    req = _Request(msg, context)
    if not summation_scheme(req.cfg.aggregation).masked:
        raise ProtocolError(f"aggregation '{req.cfg.aggregation}' does not mask; refusing a "
                            "masking step.")
    bundle = bundle_of(msg.content)
    summation = req.summation
    adverts: dict[str, tuple[bytes, ...]] = {}
    signatures: dict[str, tuple[bytes, ...]] = {}
    lengths: dict[str, int] = {}
    signing_key = load_signing_key(req.cfg.keys_dir, req.data.bank) if bundle.advertise \
        else None
    for name in bundle.advertise:
        if signing_key is None:
            raise ConfigError("this bank has no signing key in the run's key folder; every "
                              "masking advert is signed (`fedcredit keys init-signing`).")
        kind, sealed_round = parse_session(name)
        prep, total_rows = (None, 0.0) if kind == KIND_STATS else req.preprocessing()
        n_values = sealed_length(req.cfg, req.data, kind, sealed_round, layout=layout_of(req.step),
                                 prep=prep)
        lengths[name] = plaintext_count(summation, kind, n_values,
                                        masked_count_bound(req.cfg, kind, total_rows))
        config = session_config(n_banks=req.cfg.banks, modulus=mask_modulus(summation),
                                length=lengths[name], run_id=req.run_id, kind=kind,
                                round_index=sealed_round)
        key = _session_key(req.run_id, name)
        client = open_session(node_state.get(context, key) if node_state.has(context, key)
                              else None, config, req.data.bank)
        adverts[name] = (message_to_bytes(client.advertise()),)
        signatures[name] = (sign_advert(signing_key, adverts[name][0], run_id=req.run_id,
                                        bank=req.data.bank, round_index=sealed_round),)
        node_state.put(context, **{key: client})
    shares: dict[str, tuple[bytes, ...]] = {}
    for name, blobs in bundle.adverts.items():
        client = _session(context, req.run_id, name)
        shares[name] = tuple(message_to_bytes(s) for s in share_keys(
            client, blobs, bundle.signatures.get(name, ()),
            require_signing_registry(req.cfg.keys_dir), run_id=req.run_id))
        node_state.put(context, **{_session_key(req.run_id, name): client})
    attested: dict[str, tuple[bytes, ...]] = {}
    for name, listed in bundle.survivors.items():
        if name in bundle.unmask:
            continue  # the list travels again with the unmask request
        signing_key = load_signing_key(req.cfg.keys_dir, req.data.bank)
        if signing_key is None:
            raise ConfigError("this bank has no signing key in the run's key folder; the "
                              "survivor list is signed (`fedcredit keys init-signing`).")
        client = _session(context, req.run_id, name)
        attested[name] = (sign_survivors(signing_key, client, survivors_from_bytes(listed),
                                         run_id=req.run_id),)
        node_state.put(context, **{_session_key(req.run_id, name): client})
    revealed: dict[str, bytes] = {}
    for name, blob in bundle.unmask.items():
        request = message_from_bytes(blob)
        if not isinstance(request, UnmaskRequest):
            raise ProtocolError(f"masking session '{name}': the unmask request is another "
                                "message.")
        check_contributors(req.policy, len(request.survivors) + 1, f"masking session {name}")
        client = _session(context, req.run_id, name)
        if name not in bundle.survivors:
            raise ProtocolError(f"masking session '{name}': the unmask request comes without "
                                "the signed survivor list; refusing to reveal.")
        check_attestations(client, survivors_from_bytes(bundle.survivors[name]),
                           bundle.attestations.get(name, ()),
                           require_signing_registry(req.cfg.keys_dir), run_id=req.run_id)
        revealed[name] = message_to_bytes(client.unmask(request))
        # the session is over: keep only its tag (re-opening it is refused), not its secrets
        node_state.put(context, **{_session_key(req.run_id, name): close_session(client)})
    content = reply_content(bank=req.data.bank, n_examples=req.data.train.n_rows)
    return reply(msg, with_bundle(content, MaskingBundle(
        adverts=adverts, signatures=signatures, lengths=lengths, shares=shares,
        unmask=revealed, attestations=attested)))
