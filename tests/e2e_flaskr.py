"""An app shaped like Flask's tutorial (flaskr), with the extension added, for end-to-end tests.

Its handlers use what Flask apps use in views: ``get_db()`` keeping a ``sqlite3`` connection in
``g`` and closing it at teardown, a Flask-SQLAlchemy session, ``request`` and ``current_app``. The
environment chooses the files and the deadline, so every server type runs the same app.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import typing as t

from flask import Flask
from flask import current_app
from flask import g
from flask import request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

from flask_calltransfer import CallTransfer
from flask_calltransfer import TransferRequest

VIP_NUMBER = "+31612345678"
ORM_NUMBER = "+31611112222"
STORE_NUMBER = "+31207948450"
LATE_NUMBER = "+31622223333"
FALLBACK = "+31687654321"
VIP_CALLER = "+14155550100"

transfers = CallTransfer()
db = SQLAlchemy()


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"])
        g.db_thread = threading.get_ident()
    return t.cast(sqlite3.Connection, g.db)


def close_db(exc: BaseException | None = None) -> None:
    connection = g.pop("db", None)
    if connection is not None:
        # Closing raises ProgrammingError if the connection was made in another thread.
        connection.close()
        same = g.pop("db_thread") == threading.get_ident()
        with open(current_app.config["TEARDOWN_LOG"], "a") as log:
            log.write(f"closed {'same-thread' if same else 'other-thread'}\n")


def _in_request_thread() -> None:
    if g.request_thread != threading.get_ident() or not request.path.endswith("/vapi"):
        raise RuntimeError("The handler runs outside its request's thread.")


@transfers.on_request(when=lambda call: "vip" in call.text)
def vip(call: TransferRequest) -> str | None:
    _in_request_thread()
    row = get_db().execute("SELECT number FROM vip WHERE caller = ?", (call.caller,)).fetchone()
    return None if row is None else str(row[0])


@transfers.on_request(when=lambda call: "orm" in call.text)
def orm(call: TransferRequest) -> str:
    _in_request_thread()
    return str(db.session.execute(text("SELECT :number"), {"number": ORM_NUMBER}).scalar_one())


@transfers.on_request
def by_keyword(call: TransferRequest) -> str | None:
    if "raise" in call.text:
        raise LookupError("The CRM is down.")
    if "sleep" in call.text:
        time.sleep(float(os.environ["E2E_SLOW_SECONDS"]))
        return LATE_NUMBER
    if "spin" in call.text:
        end = time.monotonic() + float(os.environ["E2E_SLOW_SECONDS"])
        while time.monotonic() < end:
            pass
        return LATE_NUMBER
    if "store" in call.text:
        transfers.store.incr("e2e:store-writes")
        return STORE_NUMBER
    return None


def create_app() -> Flask:
    app = Flask(__name__, instance_path=os.environ["E2E_INSTANCE"])
    app.config.update(
        DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"),
        TEARDOWN_LOG=os.path.join(app.instance_path, "teardown.log"),
        SQLALCHEMY_DATABASE_URI="sqlite:///" + os.path.join(app.instance_path, "orm.sqlite"),
        CALLTRANSFER_VAPI_SECRET=os.environ["E2E_SECRET"],
        CALLTRANSFER_HANDLER_TIMEOUT=float(os.environ["E2E_TIMEOUT"]),
        CALLTRANSFER_FALLBACK=FALLBACK,
    )
    os.makedirs(app.instance_path, exist_ok=True)
    with sqlite3.connect(app.config["DATABASE"]) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS vip (caller TEXT PRIMARY KEY, number TEXT)")
        connection.execute("INSERT OR REPLACE INTO vip VALUES (?, ?)", (VIP_CALLER, VIP_NUMBER))
    app.teardown_appcontext(close_db)

    @app.before_request
    def remember_thread() -> None:
        g.request_thread = threading.get_ident()

    @app.get("/store-writes")
    def store_writes() -> dict[str, t.Any]:
        return {"writes": int(transfers.store.get("e2e:store-writes") or 0), "pid": os.getpid()}

    db.init_app(app)
    transfers.init_app(app)
    return app
