"""A small shop whose website analysis and review scoring run as pgflow flows."""
