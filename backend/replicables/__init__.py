"""Replicable types. Each module declares one type; importing this package
registers them all with backend.framework.replicator.REPLICATORS."""
from backend.replicables import cool_widgets  # noqa: F401
