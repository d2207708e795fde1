"""One module per `auditor` subcommand."""
