# Two commands on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest docs fuzz soak chaos slow-clients bench clean system-packages-test system-packages-run

# Debian packages each target needs, as COMMAND:PACKAGE; tools/system-packages installs the missing
# ones when it runs as root (or with password-less sudo) and otherwise prints the command and stops.
TEST_PACKAGES := redis-server:redis-server chromium:chromium curl:curl openssl:openssl pg_createcluster:postgresql
RUN_PACKAGES :=
BENCH_PACKAGES := wrk:wrk

# The platform adapters that are distributions of their own, found through their entry points.
PLUGINS := platforms/twilio platforms/jambonz

$(BIN)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,gunicorn]' $(addprefix -e ,$(PLUGINS))
	touch $@

# Without CALLTRANSFER_* credentials in the environment the example uses local development ones.
run: system-packages-run $(BIN)/.installed
	@echo "Try it from another terminal:"
	@echo "  $(BIN)/flask --app example_app calltransfer simulate vapi 'I want sales'"
	@echo "  $(BIN)/flask --app example_app calltransfer simulate vapi 'I want sales' --url http://$(HOST):$(PORT)"
	$(BIN)/gunicorn --config example_app/gunicorn.conf.py --bind $(HOST):$(PORT) 'example_app:create_app()'

test: system-packages-test lint typecheck pytest docs

system-packages-test:
	@tools/system-packages $(TEST_PACKAGES)

system-packages-run:
	@tools/system-packages $(RUN_PACKAGES)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy --strict flask_calltransfer $(foreach p,$(PLUGINS),$(p)/flask_calltransfer_$(notdir $(p)))

pytest: system-packages-test $(BIN)/.installed
	$(BIN)/pytest

# The property suite with many more examples than `make test` runs.
fuzz: $(BIN)/.installed
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/test_properties.py

# Benchmarks, not tests: in-process overhead and gunicorn throughput against hand-written routes.
bench: $(BIN)/.installed
	@tools/system-packages $(BENCH_PACKAGES)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/dashboard.py

# Chaos: 5,000 webhooks per server type whose handlers end around their deadline (bench/chaos.py),
# then the shipped deployment under load while Redis and the call-control API fail in turn
# (bench/chaos_faults.py). Fails on a worker death, a 5xx, an unanswered or late webhook.
chaos: system-packages-test $(BIN)/.installed
	$(BIN)/python bench/chaos.py --requests $${CHAOS_REQUESTS:-5000}
	$(BIN)/python bench/chaos_faults.py --phase-seconds $${CHAOS_PHASE_SECONDS:-10}

# Slow clients against the shipped gunicorn deployment (bench/slow_clients.py --help).
slow-clients: $(BIN)/.installed
	$(BIN)/python bench/slow_clients.py --attackers $${ATTACKERS:-40} --seconds $${SLOW_SECONDS:-30}

# A bounded load and soak check against gunicorn on loopback (bench/soak.py --help).
soak: $(BIN)/.installed
	$(BIN)/python bench/soak.py --seconds $${SOAK_SECONDS:-60}

docs: $(BIN)/.installed
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) docs/_build .pytest_cache .mypy_cache .ruff_cache
