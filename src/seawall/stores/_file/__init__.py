"""The file store (one machine, several processes): records, locks and slot files."""
