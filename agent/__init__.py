"""The agent and what drives it, in layers (each may use only those below it):

cli           the `forager` command line, one module per command group
lab           paper market, calibrate, evaluate, evolve, train   |  populations  fleets, Akash
daemon        one agent process: wiring, lifecycle, HTTP
runtime       the tick loop and its stages, store, reporter      |  model  deciders, server
core          records, policy, survival, prompt, strategies      |  reports  charts
config        the one settings object
errors        the package's exception tree
"""
