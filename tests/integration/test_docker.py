"""docker/compose.yaml and the Dockerfile: valid, and wired as the README says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"


def compose_command() -> list[str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip(
        "neither `docker compose` nor `docker-compose` is installed (make test installs docker-compose)"
    )


def test_docker_compose_config_validates() -> None:
    result = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "-p", "contextual-rag", "config"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    services = resolved["services"]
    assert set(services) == {"api", "vllm", "postgres", "ray-head", "ray-worker"}
    # Replicas share only PostgreSQL: no named volume holds the API's data dir.
    mounts = [mount(v) for v in services["api"].get("volumes", [])]
    assert (None, "/data") in mounts, mounts  # an anonymous volume: one per replica
    assert not any(target == "/data" and source for source, target in mounts)
    assert services["ray-worker"]["command"][:2] == ["ray", "start"]
    assert (
        services["ray-head"]["image"] == services["api"]["image"] == services["ray-worker"]["image"]
    )
    assert services["api"]["environment"]["RAG_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert services["api"]["environment"]["RAG_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert {name: dep["condition"] for name, dep in services["api"]["depends_on"].items()} == {
        "postgres": "service_healthy",
        "vllm": "service_healthy",
    }
    assert all("healthcheck" in services[name] for name in ("vllm", "postgres"))
    assert "--model=jondurbin/bagel-8x7b-v0.2" in services["vllm"]["command"]
    assert "--tensor-parallel-size=2" in services["vllm"]["command"]


def mount(volume: str | dict[str, str]) -> tuple[str | None, str]:
    """(source, target) of a compose volume in its short (docker-compose 1) or long form."""
    if isinstance(volume, dict):
        return volume.get("source") or None, volume["target"]
    parts = volume.split(":")
    return (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "\nUSER rag\n" in dockerfile and "HEALTHCHECK" in dockerfile and "/health" in dockerfile


def test_the_image_copies_every_package_the_project_installs() -> None:
    """A package added to the layout (pyproject's package list) but not copied breaks the image."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = [
        name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    missing = [name for name in packages if f"COPY {name} ./{name}" not in dockerfile]
    assert packages and not missing, f"docker/Dockerfile does not copy {missing}"
