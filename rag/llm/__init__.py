"""Generation through an OpenAI-compatible server (vLLM), embedded or external."""
