"""Flows as Python values: the DSL, slugs, releases, the canonical shape, the compiler, and
finding flows in modules."""
