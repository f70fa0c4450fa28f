"""The package's version, in a module of its own so that any part can name it without
importing the whole package (the REST client's User-Agent)."""

__version__ = "0.1.0"
