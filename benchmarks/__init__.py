"""CPU benchmarks of the course's Shake-Shake-26 2x32d backbone (see benchmarks/benchmark.py)."""
