"""Persistence: the journal, Zarr product groups and the SQLite metadata database.

Everything a process shares with another goes through here; processes never share Python objects.
"""
