"""`python -m hyoka.sandbox` = `hyoka-sandbox`."""

from hyoka.sandbox.cli import main

main()
