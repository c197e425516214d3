"""Pluggable storage: Protocols in :mod:`.base`, implementations beside them."""

from keyturn.stores.base import Storage, User, UserStore

__all__ = ["Storage", "User", "UserStore"]
