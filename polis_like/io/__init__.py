"""Reading and writing the Pol.is export format (votes, comments, participants-votes, summary).

Each name is imported when first used: writing an export does not load the reader's compiled
kernels (numba), nor reading one the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polis_like._lazy import lazy_names

if TYPE_CHECKING:
    from polis_like.io.read import read_export
    from polis_like.io.write import write_export

__all__ = ["read_export", "write_export"]

_HOMES = {"read_export": "read", "write_export": "write"}


__getattr__, __dir__ = lazy_names(__name__, globals(), _HOMES)
