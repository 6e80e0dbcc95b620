"""The model: deciders backed by llama.cpp in-process or by a model server, the server that
batches several agents' decisions, and the cache of verified model files."""
