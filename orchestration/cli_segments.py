"""`cdp segments …`: manual segments (being built)."""

import click


@click.group()
def segments() -> None:
    """Manual segments: named lists of profiles curated by a person."""
