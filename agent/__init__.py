"""The runtime: config, the loop and its stages, the model, policy, survival, state, HTTP, CLI."""
