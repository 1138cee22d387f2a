"""ptlint: a static analyzer with autofixes for PyTorch anti-patterns."""

__version__ = "0.1.0"
