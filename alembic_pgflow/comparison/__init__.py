"""Code against database: what differs between two shapes, and each slug's status."""
