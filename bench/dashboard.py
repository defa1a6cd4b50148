"""What a dashboard view costs as the transfer log grows: 300 records against 300,000.

Each size gets a fresh SQLite store (the default backend) filled through ``TransferLog.add``, with
records spread over the last seven days. Prints, per size, the median time of a dashboard view
(through Flask's test client, token in the header), of a webhook answered right after a view, and
of reading every record (what a view cost before the hourly counters), and the ratio between sizes.

    python bench/dashboard.py --sizes 300 300000
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402

from flask_calltransfer import CallTransfer  # noqa: E402
from flask_calltransfer import testing  # noqa: E402

TOKEN = "bench-dashboard-token-0123"
SECRET = "bench-vapi-secret-0123"


def measure(size: int, folder: pathlib.Path, views: int) -> dict[str, float]:
    app = Flask(__name__, instance_path=str(folder))
    app.config.update(
        CALLTRANSFER_VAPI_SECRET=SECRET,
        CALLTRANSFER_LOG_TRANSFERS=True,
        CALLTRANSFER_DASHBOARD_TOKEN=TOKEN,
        CALLTRANSFER_STORE_URL=f"sqlite:///{folder / f'log-{size}.sqlite3'}",
    )
    transfers = CallTransfer(app)
    transfers.on_request(lambda call: "+31207948450")
    log = app.extensions["calltransfer"].transfer_log
    assert log is not None
    now = time.time()
    started = time.perf_counter()
    for index in range(size):
        at = now - (index * 7 * 86400 / size)
        if index % 5:
            log.add(
                {
                    "kind": "resolved",
                    "platform": "vapi",
                    "destination": f"desk {index % 7}",
                    "ms": 0.4,
                    "at": at,
                }
            )
        else:
            log.add({"kind": "refused", "platform": "sipgate", "at": at})
    fill = time.perf_counter() - started
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = testing.dumps(testing.vapi_transfer_request(text="sales"))
    webhook = testing.vapi_secret_headers(SECRET)
    view_times, webhook_times = [], []
    for _ in range(views):
        started = time.perf_counter()
        response = client.get("/calltransfer/dashboard?since=7d", headers=headers)
        view_times.append(time.perf_counter() - started)
        assert response.status_code == 200
        started = time.perf_counter()
        assert client.post("/calltransfer/vapi", data=body, headers=webhook).status_code == 200
        webhook_times.append(time.perf_counter() - started)
    started = time.perf_counter()
    with app.app_context():
        records = len(log.records())
    scan = time.perf_counter() - started
    assert records >= size
    return {
        "fill_us_per_record": fill / size * 1e6,
        "view_ms": statistics.median(view_times) * 1000,
        "webhook_ms": statistics.median(webhook_times) * 1000,
        "scan_ms": scan * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 300_000])
    parser.add_argument("--views", type=int, default=20)
    options = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in options.sizes:
            results[size] = measure(size, pathlib.Path(folder), options.views)
            figures = results[size]
            print(
                f"{size:>8} records: view {figures['view_ms']:.1f} ms, webhook after a view"
                f" {figures['webhook_ms']:.2f} ms, reading every record {figures['scan_ms']:.0f} ms"
                f" (filled at {figures['fill_us_per_record']:.0f} us a record)"
            )
    small, large = results[min(results)], results[max(results)]
    print(f"view at {max(results)} / view at {min(results)}: {large['view_ms'] / small['view_ms']:.2f}x")


if __name__ == "__main__":
    main()
