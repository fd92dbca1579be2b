"""Generation: prompts in bagel's format, the context budget, and the OpenAI-compatible
client of the vLLM server (embedded or external) that writes the answers."""
