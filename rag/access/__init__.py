"""Who may do what: API keys, stored as their SHA-256 and scoped to collections."""
