"""The self-service replication framework: states, backoff, replicators."""
