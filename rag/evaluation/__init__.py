"""Measuring the pipeline on public benchmarks (BEIR retrieval)."""
