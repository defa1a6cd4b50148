"""A new user adds the extension to an app they already have.

The app is shaped like Flask's tutorial (flaskr): a factory taking a test config, SQLite in ``g``,
an ``init-db`` command, a registration form, and its own tests. The extension goes in switched
off (``CALLTRANSFER_PLATFORMS = []``) and the app's own tests still pass; then two platforms are
switched on and signed requests go through the pytest plugin's fixtures. Flask-WTF's real
``CSRFProtect`` must not block the webhooks, whichever is set up first.
"""

from __future__ import annotations

import sys
import textwrap

import pytest
from flask import Flask
from flask import request

from flask_calltransfer import CallTransfer
from flask_calltransfer import NumberDestination
from flask_calltransfer import testing
from flask_calltransfer.analytics import stats

SECRET = "adoption-vapi-secret-0123"

FLASKR = {
    "flaskr/__init__.py": """
        import os

        from flask import Flask

        from .transfers import transfers


        def create_app(test_config=None):
            app = Flask(__name__, instance_relative_config=True)
            app.config.from_mapping(
                SECRET_KEY="dev",
                DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"),
                # Installed, but off until the platforms' credentials are set.
                CALLTRANSFER_PLATFORMS=[],
            )
            if test_config is None:
                app.config.from_pyfile("config.py", silent=True)
            else:
                app.config.from_mapping(test_config)
            os.makedirs(app.instance_path, exist_ok=True)

            from . import db
            db.init_app(app)

            from . import auth
            app.register_blueprint(auth.bp)

            transfers.init_app(app)

            @app.route("/hello")
            def hello():
                return "Hello, World!"

            return app
    """,
    "flaskr/db.py": """
        import sqlite3

        import click
        from flask import current_app, g


        def get_db():
            if "db" not in g:
                g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
                g.db.row_factory = sqlite3.Row
            return g.db


        def close_db(e=None):
            db = g.pop("db", None)
            if db is not None:
                db.close()


        def init_db():
            db = get_db()
            db.executescript(
                "DROP TABLE IF EXISTS user; DROP TABLE IF EXISTS desk;"
                " CREATE TABLE user (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL);"
                " CREATE TABLE desk (keyword TEXT PRIMARY KEY, number TEXT NOT NULL);"
                " INSERT INTO desk VALUES ('sales', '+31207948450'), ('billing', '+31207948451');"
            )


        @click.command("init-db")
        def init_db_command():
            init_db()
            click.echo("Initialized the database.")


        def init_app(app):
            app.teardown_appcontext(close_db)
            app.cli.add_command(init_db_command)
    """,
    "flaskr/auth.py": """
        from flask import Blueprint, redirect, request

        from .db import get_db

        bp = Blueprint("auth", __name__, url_prefix="/auth")


        @bp.route("/register", methods=("GET", "POST"))
        def register():
            if request.method == "POST":
                db = get_db()
                db.execute("INSERT INTO user (username) VALUES (?)", (request.form["username"],))
                db.commit()
                return redirect("/auth/login")
            return "<form method=post><input name=username></form>"
    """,
    "flaskr/transfers.py": """
        from flask_calltransfer import CallTransfer

        from .db import get_db

        transfers = CallTransfer()


        @transfers.on_request
        def desk_for_keyword(call):
            # The app's own database, through g, as its views use it.
            for row in get_db().execute("SELECT keyword, number FROM desk"):
                if row["keyword"] in call.text.lower():
                    return row["number"]
            return None
    """,
    "tests/conftest.py": """
        import os
        import tempfile

        import pytest

        from flaskr import create_app
        from flaskr.db import init_db

        EXTRA = {}


        @pytest.fixture
        def app():
            db_fd, db_path = tempfile.mkstemp()
            app = create_app({"TESTING": True, "DATABASE": db_path, **EXTRA})
            with app.app_context():
                init_db()
            yield app
            os.close(db_fd)
            os.unlink(db_path)


        @pytest.fixture
        def client(app):
            return app.test_client()


        @pytest.fixture
        def runner(app):
            return app.test_cli_runner()
    """,
    "tests/test_factory.py": """
        from flaskr import create_app


        def test_config():
            assert not create_app().testing
            assert create_app({"TESTING": True}).testing


        def test_hello(client):
            assert client.get("/hello").data == b"Hello, World!"
    """,
    "tests/test_db.py": """
        import sqlite3

        import pytest

        from flaskr.db import get_db


        def test_get_close_db(app):
            with app.app_context():
                db = get_db()
                assert db is get_db()
            with pytest.raises(sqlite3.ProgrammingError) as e:
                db.execute("SELECT 1")
            assert "closed" in str(e.value)


        def test_init_db_command(runner, monkeypatch):
            called = []
            monkeypatch.setattr("flaskr.db.init_db", lambda: called.append(True))
            result = runner.invoke(args=["init-db"])
            assert "Initialized" in result.output
            assert called
    """,
    "tests/test_auth.py": """
        from flaskr.db import get_db


        def test_register(client, app):
            assert client.get("/auth/register").status_code == 200
            response = client.post("/auth/register", data={"username": "a"})
            assert response.headers["Location"] == "/auth/login"
            with app.app_context():
                assert get_db().execute("SELECT * FROM user WHERE username = 'a'").fetchone() is not None
    """,
}

SWITCHED_ON = {
    "tests/conftest.py": FLASKR["tests/conftest.py"].replace(
        "EXTRA = {}",
        f"""EXTRA = {{
            "CALLTRANSFER_PLATFORMS": ["vapi", "sipgate"],
            "CALLTRANSFER_VAPI_SECRET": "{SECRET}",
            "CALLTRANSFER_SIPGATE_TOKEN": "adoption-sipgate-token-01",
        }}""",
    ),
    "tests/test_transfers.py": """
        import os


        def test_sales_callers_reach_sales(calltransfer_vapi, calltransfer_signals):
            response = calltransfer_vapi.transfer_request("I'd like sales, please")
            assert response.json["destination"]["number"] == "+31207948450"
            assert calltransfer_signals.one("transfer_resolved")["handler"].__name__ == "desk_for_keyword"


        def test_sipgate_without_a_keyword_is_no_transfer_now(calltransfer_sipgate, calltransfer_signals):
            response = calltransfer_sipgate.user_speak("just saying hello")
            assert response.status_code == 204
            assert calltransfer_signals.names() == ["transfer-requested", "transfer-deferred"]


        def test_nothing_is_written_to_the_instance_folder(app, calltransfer_vapi):
            calltransfer_vapi.transfer_request("billing")
            assert not [name for name in os.listdir(app.instance_path) if "calltransfer" in name]
    """,
}


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))


def test_flaskr_keeps_passing_its_own_tests_with_the_extension_off(pytester: pytest.Pytester) -> None:
    write(pytester, FLASKR)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    # Its CLI works too, with no credentials anywhere.
    command = pytester.run(sys.executable, "-m", "flask", "--app", "flaskr", "init-db")
    assert command.ret == 0 and "Initialized the database." in command.outlines


def test_flaskr_with_two_platforms_switched_on(pytester: pytest.Pytester) -> None:
    write(pytester, {**FLASKR, **SWITCHED_ON})
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_a_fixture_for_a_platform_that_is_off_says_which_setting_is_missing(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, FLASKR)
    write(pytester, {"tests/test_voicedock.py": "def test_voicedock(calltransfer_voicedock):\n    pass\n"})
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(
        ["*The voicedock platform is not enabled on this app*Set CALLTRANSFER_VOICEDOCK_SECRET*"]
    )


def test_the_plugin_empties_the_test_store_before_each_test(pytester: pytest.Pytester) -> None:
    """One app for the whole module, a fixed tool call id in two tests: both are delivered."""
    pytester.makeconftest(
        f"""
        import pytest
        from flask import Flask
        from flask_calltransfer import CallTransfer

        transfers = CallTransfer()
        transfers.on_request(lambda call: "+31207948450")


        @pytest.fixture(scope="module")
        def app():
            app = Flask("shared")
            app.config.update(
                TESTING=True,
                CALLTRANSFER_VAPI_SECRET="{SECRET}",
                CALLTRANSFER_VAPI_TOOLS=["transferToHuman"],
            )
            transfers.init_app(app)
            return app
        """
    )
    pytester.makepyfile(
        test_twice="""
        import pytest


        @pytest.mark.parametrize("attempt", [1, 2])
        def test_fixed_tool_call_id(calltransfer_vapi, calltransfer_deliveries, attempt):
            calltransfer_vapi.tool_call("transferToHuman", {}, tool_call_id="call_fixed")
            assert len(calltransfer_deliveries) == 1
        """
    )
    for _ in range(2):  # and again, as a rerun would
        result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)


@pytest.mark.parametrize("order", ["csrf first", "csrf after"])
def test_flask_wtf_csrf_does_not_block_the_webhooks(order: str) -> None:
    from flask_wtf.csrf import CSRFProtect

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="csrf-secret",
        CALLTRANSFER_VAPI_SECRET=SECRET,
        CALLTRANSFER_STORE_URL="memory://",
        CALLTRANSFER_LOG_TRANSFERS=True,
        CALLTRANSFER_DASHBOARD_TOKEN="adoption-dashboard-token",
    )

    @app.post("/profile")
    def profile() -> str:
        return "saved"

    transfers = CallTransfer()
    transfers.on_request(lambda call: "+31207948450")
    if order == "csrf first":
        CSRFProtect(app)
        transfers.init_app(app)
    else:
        transfers.init_app(app)
        CSRFProtect(app)
    client = app.test_client()
    # The app's own forms are still protected...
    assert client.post("/profile").status_code == 400
    # ...and the platforms' signed posts, which carry no CSRF token, get through.
    body = testing.dumps(testing.vapi_transfer_request(text="sales"))
    response = client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET))
    assert response.status_code == 200 and response.json["destination"]["number"] == "+31207948450"
    sign_in = client.post("/calltransfer/dashboard/sign-in", data={"token": "adoption-dashboard-token"})
    assert sign_in.status_code == 303


def test_the_csrf_hook_leaves_after_the_first_request_and_skips_no_other_hook() -> None:
    app = Flask(__name__)
    app.config.update(CALLTRANSFER_VAPI_SECRET=SECRET, CALLTRANSFER_STORE_URL="memory://")
    CallTransfer(app)
    seen: list[str] = []
    # Registered after the extension's hook: the first request must run it all the same.
    app.before_request(lambda: seen.append(request.path) and None)

    @app.get("/")
    def index() -> str:
        return "home"

    client = app.test_client()
    assert client.get("/").status_code == 200 and client.get("/").status_code == 200
    assert seen == ["/", "/"]
    # Without Flask-WTF's CSRFProtect there is nothing to exempt: no hook is left to run.
    assert len(app.before_request_funcs[None]) == 1


def test_directory_names_reach_signals_stats_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    app.config.update(
        CALLTRANSFER_VAPI_SECRET=SECRET, CALLTRANSFER_STORE_URL="memory://", CALLTRANSFER_LOG_TRANSFERS=True
    )
    transfers = CallTransfer()
    transfers.add_destination("billing", NumberDestination("+31 20 794 8451"))
    transfers.on_request(lambda call: "billing" if "invoice" in call.text else "+31207948450")
    transfers.init_app(app)
    client = app.test_client()
    with testing.record_signals(app) as heard, caplog.at_level("INFO", logger="flask_calltransfer"):
        for text in ("about my invoice", "sales"):
            body = testing.dumps(testing.vapi_transfer_request(text=text))
            client.post("/calltransfer/vapi", data=body, headers=testing.vapi_secret_headers(SECRET))
    first, second = (sent["destination"] for sent in heard.named("transfer_resolved"))
    assert first.directory_name == "billing" and first.describe() == "billing (number +3120****451)"
    assert second.directory_name is None and second.describe() == "number +3120****450"
    assert "resolved to billing (number +3120****451)" in caplog.text
    with app.app_context():
        figures = stats(app.extensions["calltransfer"].transfer_log.records())
    assert figures["by_destination"] == {"billing (number +3120****451)": 1, "number +3120****450": 1}
    assert transfers.destinations["billing"] == NumberDestination("+31207948451")


def test_signal_recorder_takes_both_names_and_refuses_typos() -> None:
    recorder = testing.SignalRecorder([("transfer-resolved", None, {"a": 1})])
    assert recorder.one("transfer_resolved") == recorder.one("transfer-resolved") == {"a": 1}
    with pytest.raises(ValueError, match="no signal called 'transfer_resolve'"):
        recorder.named("transfer_resolve")
