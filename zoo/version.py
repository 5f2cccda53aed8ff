"""The package version, in a module of its own so the core reads it without importing ``zoo``."""

__version__ = "0.1.0"
