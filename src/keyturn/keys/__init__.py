"""Signing keys: the stored record, the ring that signs and verifies, rotation,
and sealing private keys at rest.

- :mod:`.records`: :class:`~keyturn.keys.records.SigningKey`, making a new key,
  loading one (and one JWK of a published set) with its strength checks;
- :mod:`.ring`: :class:`~keyturn.keys.ring.KeyRing`, loaded once: signs with the
  newest key, verifies any live one by ``kid``, exports the JWK Set;
- :mod:`.rotation`: :class:`~keyturn.keys.rotation.KeyManager`, an instance's
  current ring kept in step with the key store (rotate, reload, follow rotations
  made elsewhere);
- :mod:`.encryption`: the key-encryption key and AES-GCM sealing of private keys.

Owns key material and nothing else: it may import :mod:`keyturn.errors`,
:mod:`keyturn.settings`, :mod:`keyturn.clock`, :mod:`keyturn.fanout` and the store
Protocols, never tokens, sessions or :mod:`keyturn.web`.
"""
