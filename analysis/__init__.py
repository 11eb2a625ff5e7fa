"""WHAT IT MEANS: results to pandas, factor rankings, reports (built on top of finished sweeps).

``analysis`` must not import ``search``'s training code.
"""
