"""Reading and writing the Pol.is export format (votes, comments, participants-votes, summary)."""

from polis_like.io.read import read_export
from polis_like.io.write import write_export

__all__ = ["read_export", "write_export"]
