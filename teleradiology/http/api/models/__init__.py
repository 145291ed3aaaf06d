"""The request and response models of /api/v1, one module per area."""
