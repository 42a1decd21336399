"""Host side of OCI images: building image layouts without a registry (tests, demo apps)."""
