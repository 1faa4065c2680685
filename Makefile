# Conveniences over the README's commands (make is optional: every target is one line you can paste).
.PHONY: install demo test dev bench lint clean

install:
	python3 -m venv .venv && .venv/bin/pip install -q -e ".[dev]"

demo: install
	.venv/bin/cdp demo

test: install
	.venv/bin/pytest

dev: install
	.venv/bin/cdp dev

bench: install
	.venv/bin/pip install -q -e ".[dev,bench]" && .venv/bin/python -m benchmarks.run

# ruff on the Python, sqlfluff (dbt templater, compiling against a throw-away warehouse) on the models
lint: install
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && \
	tmp=$$(mktemp -d) && CDP_WAREHOUSE=$$tmp/lint.duckdb DBT_TARGET_PATH=$$tmp/target \
	.venv/bin/sqlfluff lint dbt_project/models dbt_project/tests --processes 2

clean:
	rm -rf warehouse dbt_project/target dbt_project/logs .pytest_cache
