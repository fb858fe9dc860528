"""nx.cli: the Typer command-line layer over nx.engine."""
