"""The bulkhead family: the policy object and its store-backed variant."""
