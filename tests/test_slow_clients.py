"""Slow clients against the deployment ``make run`` uses (bench/slow_clients.py, shortened).

Forty connections trickle their request one byte every half second, without credentials; the
legitimate webhooks sent meanwhile are all answered within sipgate's one-second budget, and
connections that trickle a body are cut off by ``CALLTRANSFER_BODY_TIMEOUT``.
"""

from __future__ import annotations

from bench import slow_clients


def test_webhooks_are_answered_in_time_during_a_slow_client_attack() -> None:
    result = slow_clients.run(attackers=40, seconds=8)
    assert result.ok, slow_clients.report(result, 40)
    assert result.webhooks > 50
    # The body tricklers were answered 408 and came back: the server, not they, ended it.
    assert result.attacks["cut off by the server"] >= 20
