"""Import-closure consumer: enforces a declarative import-closure policy on a listing stream."""

__version__ = "0.1.0"

__all__ = ["__version__"]
