"""`python -m nordgroup`: the same as the `nordgroup` command."""

from nordgroup.cli.grammar import entrypoint

entrypoint()
