"""The programs a user runs first: the `chainrule` command and its subcommands."""
