"""A short run of bench/chaos.py: handlers that end around their deadline never cost a worker.

``make chaos`` runs the same with 5,000 requests per server type.
"""

from __future__ import annotations

import pytest

from bench import chaos


@pytest.mark.parametrize("server", ["gunicorn-sync", "gunicorn-gthread"])
def test_no_worker_dies_and_every_webhook_is_answered(server: str) -> None:
    result = chaos.run(server, requests=300, clients=6)
    assert result.ok, chaos.report(result) + "\n" + "\n".join(result.deaths[:5])
    # Both sides of each race were exercised.
    assert result.answers["handler"] > 20 and result.answers["fallback"] > 20
