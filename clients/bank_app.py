"""Bank node ClientApp: answers the coordinator with aggregates of its own rows, never rows.

Thin: every handler unpacks the request (federation.records), calls a pure function of
``federation`` on the bank's own data, and packs the reply.
"""

from __future__ import annotations

import torch
from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from federation.bank_data import BankData, bank_data
from federation.config import RunConfig
from federation.errors import ConfigError
from federation.preprocess import local_schema, local_stats_vector
from federation.records import (
    layout_of, preprocessor_of, reply, reply_content, run_config_of, step_of, weights_of,
)
from federation.training import evaluate_histograms, train_round

torch.set_num_threads(1)
app = ClientApp()


def own_data(cfg: RunConfig, context: Context) -> BankData:
    """This node's rows: in simulation, partition ``partition-id`` of the configured data set."""
    node = context.node_config
    if "partition-id" not in node:
        raise ConfigError(
            "this node has no 'partition-id' in its node config; bank nodes outside simulation "
            "are started with their own data file (see docs/deployment.md)."
        )
    return bank_data(cfg, int(node["partition-id"]))


@app.query("schema")
def schema(msg: Message, context: Context) -> Message:
    """Step 1 of federated preprocessing: column kinds and category names only."""
    cfg = run_config_of(msg.content)
    data = own_data(cfg, context)
    return reply(msg, reply_content(bank=data.bank, n_examples=data.train.n_rows,
                                    schema=local_schema(data.train)))


@app.query("stats")
def stats(msg: Message, context: Context) -> Message:
    """Step 2 of federated preprocessing: counts, sums, sums of squares, category counts."""
    cfg = run_config_of(msg.content)
    data = own_data(cfg, context)
    vector = local_stats_vector(data.train, layout_of(step_of(msg.content)))
    return reply(msg, reply_content(bank=data.bank, n_examples=data.train.n_rows, vector=[vector]))


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Local training from the global weights; returns the new weights and the row count."""
    cfg = run_config_of(msg.content)
    step = step_of(msg.content)
    data = own_data(cfg, context)
    weights, n = train_round(cfg, preprocessor_of(step), data.train, weights_of(msg.content),
                             round_index=int(step["round"]), bank=data.bank)
    return reply(msg, reply_content(bank=data.bank, n_examples=n, weights=weights))


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Score the bank's test rows; only per-class score histograms leave the node."""
    cfg = run_config_of(msg.content)
    data = own_data(cfg, context)
    bad, good = evaluate_histograms(cfg, preprocessor_of(step_of(msg.content)), data.test,
                                    weights_of(msg.content))
    return reply(msg, reply_content(bank=data.bank, n_examples=data.test.n_rows,
                                    vector=[bad, good]))
