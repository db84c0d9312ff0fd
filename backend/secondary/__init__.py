"""The secondary site: tracking DB stores, Geo API client and the engine."""
