"""`python -m oh.cli`: the same as the `oh` console script."""

from oh.cli.main import main

main()
