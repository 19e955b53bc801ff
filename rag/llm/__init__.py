"""The optional LLM answer mode: generator, prompts and the mechanical grounding check."""
