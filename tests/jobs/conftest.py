"""The jobs tests share the session-wide local Ray cluster from tests/conftest.py."""
