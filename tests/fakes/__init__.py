"""Local stand-ins for external services, run as real servers in tests."""
