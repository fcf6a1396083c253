"""Pure array primitives: time on axis 0, trailing axes broadcast, per-element outputs.

Callers reduce with :func:`purejaxpo.primitives.advantages.masked_mean`. Nothing here knows about
environments or networks.
"""
