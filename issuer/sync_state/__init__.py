"""The cached inputs of a token sync (`store`) and their invalidation on every write (`receivers`)."""
