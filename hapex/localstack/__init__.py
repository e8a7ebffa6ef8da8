"""What `make run` and the tests need on a developer's machine: data dir, embedded
PostgreSQL, local secrets and a local certificate authority. Never used in production."""
