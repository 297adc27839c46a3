"""Prefect flows and the CLI: thin wiring of extractors, transforms, warehouse and notifiers."""
