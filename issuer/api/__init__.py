"""Doors for machines: discovery + JWKS (`public`), GraphQL (`graphql`), REST (`rest`), the admin keys API."""
