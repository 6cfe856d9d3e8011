"""`import-closure` command line: one module per command; parsing and exit codes only.

main.py holds the top-level parser, `main` and dispatch; each command module (check, run, ...)
holds its options and its handler and is imported by main only; options.py and
exit_codes.py hold what several commands share. May import every other package: this is
where objects are built and errors become exit codes.
"""

from consumer.cli.main import main

__all__ = ["main"]
