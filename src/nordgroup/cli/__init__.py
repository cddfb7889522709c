"""The command line: `grammar` declares every subcommand and makes the exit codes; one handler module
per group of subcommands (`group`, `explain`, `tables`, `audit`, `compare`, `money`) does the work,
imported only when its subcommand runs."""

from nordgroup.cli.grammar import entrypoint, main

__all__ = ["entrypoint", "main"]
