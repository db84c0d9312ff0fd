"""Reusable Qt widgets of the console: they show plain data, never touch the
engine or a database."""
