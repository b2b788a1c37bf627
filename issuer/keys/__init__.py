"""Signing keys: crypto, encryption at rest, the timing policy, lifecycle services and the published key set."""
