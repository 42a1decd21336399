"""The documents users hand to the control service (Project, node) and their validation."""
