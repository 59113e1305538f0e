"""Metrics with confidence intervals, paired tests and their figures."""
