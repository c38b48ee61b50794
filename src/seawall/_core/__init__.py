"""Pure rules: each policy's decisions as plain functions and small classes.

Nothing here reads a clock, sleeps, locks or does I/O, and nothing here imports the rest of
seawall: the policies, stores and integrations drive these rules."""
