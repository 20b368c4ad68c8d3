"""Development tools: the instant sync loop and the flow playground (never for production)."""
