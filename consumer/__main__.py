"""`python -m consumer` is the same as the `import-closure` command."""

from consumer.cli import main

raise SystemExit(main())
