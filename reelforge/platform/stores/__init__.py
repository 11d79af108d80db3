"""Persistence: the platform database (one module per table), its migrations, and the blob store."""
