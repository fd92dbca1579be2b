"""Measuring the pipeline on public benchmarks (BEIR retrieval, SQuAD v2 answers), and where
each figure was measured. Above the indexer: it indexes benchmark corpora the normal way."""
