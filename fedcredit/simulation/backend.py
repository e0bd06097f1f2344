"""The Ray backend settings of a horizontal simulation: this machine, or a Ray cluster.

Flower's simulation engine runs each ClientApp in a pool of Ray actors (one CPU each here). By
default Ray starts on this machine with as many CPUs as there are banks, up to the machine's.
With ``RAY_ADDRESS`` set (``host:port`` of a running cluster's head, or ``auto``) the run joins
that cluster instead and Flower sizes the pool from the cluster's CPUs; every node then needs
the same code at the same path and the run folder (``--out``: the key ceremony's files) and the
data file on a filesystem they all share (docs/scaling.md).
"""

from __future__ import annotations

import logging
import os
from typing import Any

RAY_ADDRESS_ENV = "RAY_ADDRESS"
"""Ray's own variable naming a running cluster (``ray.init`` reads it too)."""


def simulation_backend(banks: int) -> dict[str, Any]:
    """Flower's ``backend_config`` for ``banks`` simulated banks (see the module docstring)."""
    quiet = {"include_dashboard": False, "log_to_driver": False,
             "logging_level": logging.ERROR}
    address = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    if address:  # a cluster brings its own CPUs; ray.init refuses num_cpus with an address
        init_args: dict[str, Any] = {"address": address, **quiet}
    else:
        cpus = max(1, min(os.cpu_count() or 1, banks))
        init_args = {"num_cpus": cpus, "num_gpus": 0, **quiet}
    return {"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": init_args}
