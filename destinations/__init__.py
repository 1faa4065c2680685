"""Reverse ETL: the sync engine, destination connectors and their sandboxes.

Nothing in this package imports Dagster; the orchestration layer wires it up.
"""
