"""Resilient clients for data stores: SQL databases, Redis and S3."""
