"""Authentication: bearer tokens verified against a JWKS or the local development key
(:mod:`~api.security.tokens`), the middleware and the admin guard
(:mod:`~api.security.middleware`), and ``GET /api/me``."""
