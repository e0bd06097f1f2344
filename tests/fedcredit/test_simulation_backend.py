"""Where a horizontal simulation runs (issue 14, part 5): this machine by default, the Ray
cluster named by RAY_ADDRESS otherwise (ray.init refuses CPU counts with an address)."""

from __future__ import annotations

import os

import pytest

from fedcredit.simulation.backend import RAY_ADDRESS_ENV, simulation_backend


def test_a_local_run_gets_one_cpu_per_bank_up_to_the_machines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    few = simulation_backend(1)
    assert few["init_args"]["num_cpus"] == 1 and "address" not in few["init_args"]
    many = simulation_backend(10_000)
    assert many["init_args"]["num_cpus"] == (os.cpu_count() or 1)
    assert many["client_resources"] == {"num_cpus": 1, "num_gpus": 0.0}


def test_ray_address_joins_that_cluster_without_cpu_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(RAY_ADDRESS_ENV, " 10.0.0.5:6379 ")
    init = simulation_backend(1000)["init_args"]
    assert init["address"] == "10.0.0.5:6379"
    assert "num_cpus" not in init and "num_gpus" not in init
    assert init["include_dashboard"] is False
