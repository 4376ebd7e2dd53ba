"""The client's version (its own, independent of the service's)."""

__version__ = "0.1.0"
