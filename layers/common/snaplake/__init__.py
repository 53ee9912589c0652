"""snaplake: the shared library behind the snaplake Lambda handlers."""

__version__ = "0.1.0"
