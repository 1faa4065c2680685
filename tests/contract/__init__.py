"""The connector contract suite: every connector in destinations.config.CONNECTORS runs it."""
