"""The decentralized cloud: SDL rendering and validation, the deployment client, pricing.

Built in a later issue; the package exists so the layout (and the import contract) is whole.
"""
