"""`python -m hyoka.metrics` runs the `hyoka-metrics` CLI."""

from hyoka.metrics.cli import main

main()
