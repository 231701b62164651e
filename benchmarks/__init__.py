"""asv benchmarks (bench_*.py) and pytest-benchmark suites (test_bench_*.py) of vaebench.ops."""
