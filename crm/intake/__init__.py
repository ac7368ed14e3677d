"""Ingestion: sources yield raw records, stored first, then resolved into contacts."""
