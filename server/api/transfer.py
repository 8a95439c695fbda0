"""Pol.is CSV export and import of conversations."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("transfer", __name__)
