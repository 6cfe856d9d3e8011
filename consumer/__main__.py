"""`python -m consumer` is the same as the `import-closure` command."""

from consumer.cli.main import main

raise SystemExit(main())
