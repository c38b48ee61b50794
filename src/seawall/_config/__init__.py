"""Configuration: the settings model, its schema and the file and environment loaders."""
