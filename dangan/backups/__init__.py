"""Per-tenant backups to S3 (issue 7): compressed, encrypted, verifiable."""
