"""A plain reader of the service's server-sent events, for tests that stream."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient


def read_events(
    client: TestClient, path: str, payload: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(event, JSON data) pairs: `event:` and `data:` lines, events separated by a blank line."""
    events: list[tuple[str, dict[str, Any]]] = []
    event: str | None = None
    data: list[str] = []
    with client.stream("POST", path, json=payload) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif not line and event:
                events.append((event, json.loads("\n".join(data))))
                event, data = None, []
    return events
