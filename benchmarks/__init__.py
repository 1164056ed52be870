"""Benchmarks that run the project side by side with its baselines (`make bench`)."""
