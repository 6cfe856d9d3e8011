"""`import-closure` command line: one module per command; parsing and exit codes only.

May import every other package: this is where objects are built and errors become exit codes.
"""

from consumer.cli.main import main

__all__ = ["main"]
