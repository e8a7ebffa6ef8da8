"""A client's connections to providers (metadata; credentials live in the vault)."""
