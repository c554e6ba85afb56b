"""Evaluation, benchmarks and test doubles: what measures the endpoint, not what serves it."""
