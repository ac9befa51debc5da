"""Measurements run by hand, never timed assertions inside tests."""
