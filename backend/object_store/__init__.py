"""Object storage through the S3 protocol (boto3): the primary's file_store 2
blobs and the secondary's replicas of them (docs/OBJECT_STORAGE.md)."""
