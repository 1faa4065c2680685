"""Dagster-free core of the composable CDP: settings, warehouse access, sample data."""
