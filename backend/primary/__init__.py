"""The primary site: blob storage, catalog, checksumming and the Geo API."""
