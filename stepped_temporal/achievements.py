"""The `stepped_achievements` table and its three operations (S5.2, S5.3).

An achievement records that the work identified by a checksum was done under a
checksum_key. `exists` backs the skip (S3.4), `erase` the erase on start
(S3.5), `grant` the grant on clean success (S3.9). The table and the
statements live with Stepped's other tables in `store/`; these are the names
applications and their tests use.
"""

from .store.achievements import erase, exists, grant
from .store.schema import Achievement, SteppedBase, create_tables

__all__ = ["Achievement", "SteppedBase", "create_tables", "erase", "exists", "grant"]
