"""How the CLI reaches the control service: over HTTP (``GOSHIP_URL``) or on the embedded store."""
