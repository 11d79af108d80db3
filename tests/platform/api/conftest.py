"""API fixtures: the app through FastAPI's TestClient, on real stores under a temporary home."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import ApiClients


@pytest.fixture
def api(tmp_path: Path) -> ApiClients:
    return ApiClients(tmp_path / "home")
