"""Benchmarks: `python -m bench [name ...]` runs bench/bench_<name>.py main() functions (all by default)."""
