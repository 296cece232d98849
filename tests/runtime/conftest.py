"""The fake registry, patched in where `runtime pull` makes its client."""

from __future__ import annotations

import pytest

from runtime import pull as pull_module
from runtime.client import RegistryClient
from runtime.config import Settings

from .fake_registry import FakeRegistry


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    fake = FakeRegistry()

    def client_for(settings: Settings, registry: str, endpoint: str) -> RegistryClient:
        return RegistryClient(endpoint, transport=fake.transport())

    monkeypatch.setattr(pull_module, "client_for", client_for)
    return fake
