"""Resilient clients for data stores (databases, caches, object stores).

Each module imports its client library when it is first used, so
``import buttress`` needs none of them; the extras (``buttress[sqlalchemy]``,
...) install them.
"""
