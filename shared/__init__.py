"""Code both services use: configuration, database access, migrations, logging."""
