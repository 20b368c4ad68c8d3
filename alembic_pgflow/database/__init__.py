"""What lives in PostgreSQL: reading pgflow's definitions, installing pgflow or its stand-in,
the embedded server."""
