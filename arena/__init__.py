"""A world to live in: a local anvil chain, the market contracts, market weather and a landlord.

Used when no chain is configured, by tests, and (later) as the shared world of a population.
"""
