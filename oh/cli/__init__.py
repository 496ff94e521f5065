"""The `oh` command (typer): `oh.cli.main:main` is the console script."""
