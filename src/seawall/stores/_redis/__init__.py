"""The Redis store (several machines): client plumbing, keys, scripts and replies."""
