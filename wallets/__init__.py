"""Everything on-chain: keys, the chain client, the transaction journal, tokens and the DEX.

`wallets` never imports `agent`: it knows nothing of ticks or decisions, only of keys,
transactions and contracts.
"""
