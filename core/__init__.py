"""The pipeline core: model loading, device policy, schedulers, generation, metadata and output.

Import the submodules directly; this package imports nothing heavy so that `scumble --help` stays fast.
"""
