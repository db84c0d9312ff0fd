"""The Geo Console desktop application (PySide6)."""
