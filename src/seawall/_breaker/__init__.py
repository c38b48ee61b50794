"""The circuit breaker family: the policy object and its store-backed variant."""
