"""The `ez360` command. It sits on top of every layer: it seeds, migrates, runs pipelines and serves UIs."""

from ez360.cli.app import app

__all__ = ["app"]
