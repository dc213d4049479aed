"""Feature subcommands of the `carbonstream` CLI (see carbonstream.cli.FEATURE_COMMANDS)."""
