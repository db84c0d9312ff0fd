"""HTTP: request authentication and the servers' plumbing."""
