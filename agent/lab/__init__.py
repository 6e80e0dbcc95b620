"""The lab: the paper market and the research done on it - calibrate the world, evaluate one
generation against another, train a LoRA adapter, evolve generation after generation.

Modules: `paper_market` (the loop's ports on an in-memory pool), `calibrate` (baselines on many
seeds), `evaluate` (parent vs child, paired by seed), `train` (LoRA -> GGUF), `evolve` (the
generations loop), `stats` (scipy's intervals), `report` (JSON + Markdown + PNG of a result).
"""
