"""The policy impact tools (export, diff, replay): shell modules the command line calls."""
