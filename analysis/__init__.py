"""stemwatch analysis: text extraction, claim detection, storage, exports and the CLI."""

__version__ = "0.1.0"
