"""The deployed ServerApp's reply-object retries (server.grid_pacing)."""

from __future__ import annotations

import functools
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from server.grid_pacing import OBJECT_PULL_FIRST_BACKOFF_S, install


def _fake_grid() -> tuple[ModuleType, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def pull_objects(object_ids: list[str], pull_object_fn: Any, **kwargs: Any) -> dict:
        calls.append(kwargs)
        return {i: pull_object_fn(i) for i in object_ids}

    module = ModuleType("fake_http_grid")
    module.pull_objects = pull_objects  # type: ignore[attr-defined]
    return module, calls


def test_the_first_retry_is_twenty_ms_and_installing_twice_wraps_once() -> None:
    module, calls = _fake_grid()
    assert install(module, version="1.42.0")
    assert install(module, version="1.42.0")
    out = module.pull_objects(["a", "b"], pull_object_fn=str.upper)
    assert out == {"a": "A", "b": "B"}
    assert calls == [{"initial_backoff": OBJECT_PULL_FIRST_BACKOFF_S}]


def test_another_flower_release_keeps_flowers_retry() -> None:
    module, calls = _fake_grid()
    original = module.pull_objects
    assert not install(module, version="1.43.0")
    assert module.pull_objects is original
    assert not install(SimpleNamespace(), version="1.42.0")  # type: ignore[arg-type]


def test_the_real_grid_module_is_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    from flwr.supercore.inflatable import inflatable_utils
    from flwr.superlink.grid import http_grid

    monkeypatch.setattr(http_grid, "pull_objects", inflatable_utils.pull_objects)
    assert install()
    paced = http_grid.pull_objects
    assert isinstance(paced, functools.partial)
    assert paced.func is inflatable_utils.pull_objects
    assert paced.keywords == {"initial_backoff": OBJECT_PULL_FIRST_BACKOFF_S}
