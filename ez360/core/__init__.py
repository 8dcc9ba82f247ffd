"""The shared core every layer may import: settings, money, the warehouse URL, the published-data contract.

A leaf: it imports no layer (`operational_api`, `ingest`, `quality`, `pipelines`, `apps`) and nothing above it
(`ez360.cli`, `ez360.demo`); the import contract in pyproject.toml (import-linter) keeps it that way.
"""
