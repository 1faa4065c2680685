# Conveniences over the README's commands (make is optional: every target is one line you can paste).
.PHONY: install demo test dev bench clean

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

clean:
	rm -rf warehouse dbt_project/target dbt_project/logs .pytest_cache
