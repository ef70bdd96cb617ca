"""The package version, in a module that imports nothing of the package (so any module
may read it without importing ``kachery_flows`` itself)."""

__version__ = "0.1.0"
