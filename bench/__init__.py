"""The benchmark (``python bench/run.py``); not part of the package."""
