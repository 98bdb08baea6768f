"""Helpers shared by the test suite and the benchmarks: fake upstream servers, payload builders, fault injection."""
