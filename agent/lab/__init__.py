"""The lab: the paper market and the research done on it - calibrate the world, evaluate one
generation against another, train a LoRA adapter, evolve generation after generation."""
