"""Algorithms: each module has a ``Config`` (static), an ``HParams`` (traced pytree) and ``make_train``."""
