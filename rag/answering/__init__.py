"""The use cases on top of retrieval and generation: answers with verified citations and
attribution, summaries, and the start-up warm-up that exercises them."""
