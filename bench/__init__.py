"""Benchmarks: side-by-side ratios against a baseline in the same process, never timed assertions."""
