"""ServiceAccessTokens: claims, minting and sync (`services`), the refresh job (`refresh`), freshness and
verification (`selectors`)."""
