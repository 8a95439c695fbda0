"""polis-like: deliberation at scale, faithful to the Pol.is opinion math."""

__version__ = "0.1.0"
