"""Reading and writing the Pol.is export format (votes, comments, participants-votes, summary).

Each name is imported when first used: writing an export does not load the reader's compiled
kernels (numba), nor reading one the writer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polis_like.io.read import read_export
    from polis_like.io.write import write_export

__all__ = ["read_export", "write_export"]

_HOMES = {"read_export": "read", "write_export": "write"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
