# The two commands the README promises: `make demo` and `make test` (CI runs `make test` via .ci/run).
VENV := .venv-template
BIN := $(CURDIR)/$(VENV)/bin
DEMO := .demo
# Hooks look for uv on PATH; the one installed into $(VENV) will do.
export PATH := $(BIN):$(PATH)

.PHONY: demo test pytest dbos-suite dbos-suite-postgresql dbos-suite-sqlite lint format bench clean

$(VENV)/.installed: requirements-dev.txt
	@if command -v uv >/dev/null 2>&1; then \
		uv venv --quiet --allow-existing $(VENV) && uv pip install --quiet --python $(VENV)/bin/python -r requirements-dev.txt; \
	else \
		python3 -m venv $(VENV) && $(VENV)/bin/pip install --quiet -r requirements-dev.txt; \
	fi
	@touch $@

# Everything: the template's and the runtime's tests, then DBOS's own suite on both databases side by side.
test: $(VENV)/.installed
	@$(MAKE) --no-print-directory pytest
	@$(MAKE) --no-print-directory -j2 --output-sync=target dbos-suite-postgresql dbos-suite-sqlite

# Parallel: most tests wait on real processes and servers. A group (one bake's tests) stays in one worker.
PYTEST_WORKERS ?= 3
pytest: $(VENV)/.installed  ## the template's tests and the runtime's own (tests/)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup

dbos-suite: dbos-suite-postgresql dbos-suite-sqlite  ## DBOS 2.31.1's own tests against a baked project's runtime

# A static pattern rule: make searches no implicit (%) rule for a .PHONY target, so a plain pattern rule
# here made both suites "Nothing to be done" and never ran them.
dbos-suite-postgresql dbos-suite-sqlite: dbos-suite-%: $(VENV)/.installed
	scripts/dbos_suite.sh $*

lint: $(VENV)/.installed
	$(BIN)/ruff check hooks tests scripts

format: $(VENV)/.installed  ## ruff format the generated project's Python, in the template (scripts/format_generated.py)
	$(BIN)/python scripts/format_generated.py

demo: $(VENV)/.installed
	rm -rf $(DEMO)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO) .
	@echo
	@echo "Serving $(DEMO)/order-service on http://127.0.0.1:8000 (Ctrl-C to stop). In another terminal:"
	@echo "  curl -s -X POST http://127.0.0.1:8000/orders -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"user_id\": \"alice\", \"items\": [{\"sku\": \"book\", \"quantity\": 2, \"price_cents\": 1250}]}'"
	@echo "  curl -s http://127.0.0.1:8000/orders/1"
	@echo "  curl -s http://127.0.0.1:8000/orders/1/workflow"
	@echo "  curl -s http://127.0.0.1:8000/readyz"
	@echo
	cd $(DEMO)/order-service && BIND=127.0.0.1:8000 exec .venv/bin/gunicorn --config gunicorn.conf.py

bench:  ## the full benchmark against DBOS and the database's commit limit (under 10 minutes)
	bench/run

clean:
	rm -rf $(DEMO) $(VENV)
