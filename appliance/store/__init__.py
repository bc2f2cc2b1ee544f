"""The job store: metadata in SQLite, sealed documents in files."""
