"""`python -m nordgroup.cli`: the same as the `nordgroup` command."""

from nordgroup.cli.grammar import entrypoint

entrypoint()
