"""The rate limiter family: plain and keyed limiters, their driver, and store-backed variants."""
