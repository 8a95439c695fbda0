"""Import a Pol.is export as a conversation, and export a conversation as one (helper fills)."""
