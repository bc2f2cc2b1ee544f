"""Cryptography of a job: streaming AEAD, key splitting, user key pairs."""
