"""Use cases of the control service (apply, scale, drain, tokens, ...), shared by the REST API
and the CLI's embedded mode. Everything returned is plain JSON-ready data."""
