"""Shared building blocks: the clock, the error hierarchy and config validation."""
