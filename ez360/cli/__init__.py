"""The `ez360` command (`ez360.cli.app:app`). It sits on top of every layer: it seeds, migrates, runs pipelines and
serves UIs. This package imports nothing eagerly, so `python -m ez360.cli.guard` (one per running server) starts
without loading the whole command."""
