"""Two traps of a second service on one machine: the model server's port and the model cache."""

from __future__ import annotations

from pathlib import Path

from api.container import embedded_server
from rag.config import Settings
from tests.conftest import MODELS_DIR, make_settings


def test_two_services_take_different_free_ports_unless_one_is_configured(tmp_path: Path) -> None:
    first = embedded_server(make_settings(tmp_path / "a"))
    second = embedded_server(make_settings(tmp_path / "b"))
    assert first.port != second.port and first.port > 0 and second.port > 0
    pinned = embedded_server(make_settings(tmp_path / "c", llm={"embedded_port": 8899}))
    assert pinned.port == 8899


def test_a_new_data_dir_finds_the_prepared_generator_in_the_shared_cache(tmp_path: Path) -> None:
    server = embedded_server(Settings(data_dir=tmp_path / "fresh-data-dir"))  # no models_dir given
    assert server.model_dir.parent == MODELS_DIR
    assert (server.model_dir / "config.json").exists()
