"""The Flask web application (HTTP API and pages); built on top of ``polis_like``."""
