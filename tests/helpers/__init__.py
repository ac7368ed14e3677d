"""Helpers shared by the tests and the benchmarks: seed data, fixtures, a local PostgreSQL."""
