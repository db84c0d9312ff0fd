"""Databases: the primary's main DB and the secondary's tracking DB."""
