"""Multi-factor sign-in and passkeys (framework-free core; design note to follow)."""
