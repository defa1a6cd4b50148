"""gunicorn settings for the example app.

``gunicorn -c example_app/gunicorn.conf.py 'example_app:create_app()'``
"""

from __future__ import annotations

import os
import typing as t

from flask_calltransfer.platforms import worker_timeout

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gevent: a client that sends its request slowly holds one greenlet of a thousand, not a whole
# sync worker, and handler deadlines reach sleeps and socket calls (docs/deployment.rst).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
worker_connections = 1000
# Handler deadlines end slow handlers inside each platform's budget; what no deadline can reach
# (C code holding the GIL) is ended here, once the most patient platform (Vapi, 20 s) has stopped
# waiting: 21 s, instead of gunicorn's 30.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", worker_timeout()))
accesslog = "-"
# A webhook's access line ends with what the extension decided for it ("Transfer ... resolved to
# number +3120****450 by route in 1.2 ms."), instead of a second line of its own: half the lines
# per webhook, and about a tenth more requests per second (docs/performance.rst). Other requests
# end with "-". Set CALLTRANSFER_DECISION_LOG=logger to have the INFO line back.
access_log_format = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({flask_calltransfer.decision}e)s'
)
raw_env = [f"CALLTRANSFER_DECISION_LOG={os.environ.get('CALLTRANSFER_DECISION_LOG', 'environ')}"]
loglevel = "info"

# The app's own loggers (flask_calltransfer, the app's) get gunicorn's time, pid and level, plus
# the logger's name, on stderr. Without this only warnings reach the output, with no time or level.
# gunicorn keeps its own error and access logs (and --access-logfile / --error-logfile) as they are:
# their loggers are not named here, and they do not propagate to the root.
logconfig_dict = {
    "root": {"level": os.environ.get("LOG_LEVEL", "INFO"), "handlers": ["app"]},
    "loggers": {},
    "handlers": {"app": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"}},
    "formatters": {
        "app": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        }
    },
}


def when_ready(server: t.Any) -> None:
    for address in server.cfg.bind:
        server.log.info("Vapi webhook: POST http://%s/calltransfer/vapi", address)
        server.log.info("sipgate AI Flow webhook: POST http://%s/calltransfer/sipgate", address)
        server.log.info("VoiceDock webhook: POST http://%s/calltransfer/voicedock", address)
        server.log.info(
            "Try: flask --app example_app calltransfer simulate vapi 'I want sales' --url http://%s", address
        )
