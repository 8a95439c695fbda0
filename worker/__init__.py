"""The math worker process that keeps conversation results current."""
