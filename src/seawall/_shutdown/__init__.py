"""Graceful shutdown: the callback registry, its runner and the signal handling."""
