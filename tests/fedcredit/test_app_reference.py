"""Flower's Ray backend gets the bank's ClientApp by name, not pickled by value per message."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import ray.cloudpickle as cloudpickle

from fedcredit.simulation import app_reference


def _flowers_loader(app: Any) -> Any:
    """Stands for the simulation runtime's closure over the loaded ClientApp."""
    def _load() -> Any:
        return app
    return _load


def test_the_bank_app_travels_as_a_name_and_arrives_as_the_same_object() -> None:
    from clients.app import app

    loader = app_reference.by_reference(_flowers_loader(app))
    assert loader is app_reference.bank_app
    sent = cloudpickle.dumps(loader)
    assert len(sent) < 200 < len(cloudpickle.dumps(_flowers_loader(app)))
    assert pickle.loads(sent)() is app  # what the actor runs: the very handlers


def test_any_other_app_or_a_failing_loader_keeps_flowers_closure() -> None:
    other = _flowers_loader(object())
    assert app_reference.by_reference(other) is other

    def failing() -> Any:
        raise RuntimeError("cannot load")

    assert app_reference.by_reference(failing) is failing  # Flower reports it, as before


def test_install_wraps_the_backends_build_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

    from clients.app import app

    kept: list[Any] = []
    monkeypatch.setattr(RayBackend, "build", lambda self, app_fn: kept.append(app_fn))
    assert app_reference.install() is True
    wrapped = RayBackend.build
    assert app_reference.install() is True and RayBackend.build is wrapped
    wrapped(object(), _flowers_loader(app))
    other = _flowers_loader(object())
    wrapped(object(), other)
    assert kept == [app_reference.bank_app, other]


def test_another_flower_release_keeps_its_build(monkeypatch: pytest.MonkeyPatch) -> None:
    import flwr
    from flwr.server.superlink.fleet.vce.backend.raybackend import RayBackend

    def flowers_build(self: Any, app_fn: Any) -> None:
        return None

    monkeypatch.setattr(RayBackend, "build", flowers_build)
    monkeypatch.setattr(flwr, "__version__", "9.0.0")
    assert app_reference.install() is False
    assert RayBackend.build is flowers_build
