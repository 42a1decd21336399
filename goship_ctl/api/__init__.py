"""The REST API (FastAPI) under /api/v1, /metrics and /healthz; ``create_app`` builds it."""
