"""Geo Console backend: replication framework, sites, databases, APIs and CLI.

Nothing under this package imports Qt; it runs headless on a server.
"""
