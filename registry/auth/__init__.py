"""Authentication and authorization: the access model, htpasswd users, JWT tokens and the built-in token service."""
