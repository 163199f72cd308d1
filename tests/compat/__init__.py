"""Runs the official uid2-client unit tests against uid2fast (see README.md)."""
