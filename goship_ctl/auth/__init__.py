"""API tokens (admin and project-scoped), who a request acts as, and the failed-login limiter."""
