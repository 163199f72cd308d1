"""Test helpers for code that uses uid2fast: a local operator on loopback.

>>> from uid2fast.testing import LocalOperator
"""
from .operator import INSUFFICIENT_CONSENT_TCF, MASTER_KEYSET_ID, LocalOperator, RequestRecord

__all__ = ["LocalOperator", "RequestRecord", "INSUFFICIENT_CONSENT_TCF", "MASTER_KEYSET_ID"]
