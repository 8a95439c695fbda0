"""The report's static map: base clusters as circles, groups told apart by letter and pattern.

The geometry is computed here and drawn by ``templates/_report_map.html`` as inline SVG, so the
map needs no script and prints. Colour is a third cue, never the only one: each group has its own
fill pattern (``PATTERNS``) and its letter at its centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from polis_like.storage.results import ResultsDocument

WIDTH, HEIGHT, PAD = 600.0, 400.0, 36.0
MAX_RADIUS, MIN_RADIUS = 28.0, 4.0

#: Per group, in order: the pattern's id suffix and its colour (high contrast on white).
PATTERNS = [
    ("diagonal", "#1d4ed8"),
    ("dots", "#b45309"),
    ("cross", "#047857"),
    ("horizontal", "#7e22ce"),
    ("vertical", "#be123c"),
    ("checks", "#0f766e"),
    ("waves", "#4d7c0f"),
    ("rings", "#9a3412"),
]


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float
    size: int
    group: int


@dataclass(frozen=True)
class GroupMark:
    group: int
    name: str
    pattern: str
    colour: str
    x: float  # the centre in the result's coordinates (for the table)
    y: float
    cx: float  # and on the drawing
    cy: float
    size: int
    clusters: int


@dataclass(frozen=True)
class MapView:
    width: float
    height: float
    circles: list[Circle]
    groups: list[GroupMark]


def pattern_of(group: int) -> tuple[str, str]:
    """The (pattern, colour) of a group; they repeat only past eight groups."""
    return PATTERNS[group % len(PATTERNS)]


def map_view(document: ResultsDocument) -> MapView | None:
    """Circles for the placed base clusters, scaled into the drawing; None with nothing placed."""
    placed = [
        c
        for c in document.base_clusters
        if c.x is not None and c.y is not None and c.size > 0 and c.group >= 0
    ]
    if not placed:
        return None
    xs = [c.x for c in placed if c.x is not None]
    ys = [c.y for c in placed if c.y is not None]
    scale = min(
        (WIDTH - 2 * PAD) / max(max(xs) - min(xs), 1e-9),
        (HEIGHT - 2 * PAD) / max(max(ys) - min(ys), 1e-9),
    )  # the same scale on both axes: distances on the map mean the same either way
    mid_x, mid_y = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    biggest = max(c.size for c in placed)

    def at(x: float, y: float) -> tuple[float, float]:
        # y grows upwards on the map and downwards in SVG
        return (
            round(WIDTH / 2 + (x - mid_x) * scale, 1),
            round(HEIGHT / 2 - (y - mid_y) * scale, 1),
        )

    circles = []
    for c in sorted(placed, key=lambda c: -c.size):  # small circles drawn over big ones
        cx, cy = at(c.x or 0.0, c.y or 0.0)
        r = max(MIN_RADIUS, MAX_RADIUS * math.sqrt(c.size / biggest))
        circles.append(Circle(cx, cy, round(r, 1), c.size, c.group))
    marks = []
    for group in document.groups:
        members = [c for c in placed if c.group == group.id]
        if not members:
            continue
        weight = sum(c.size for c in members)
        x = sum((c.x or 0.0) * c.size for c in members) / weight
        y = sum((c.y or 0.0) * c.size for c in members) / weight
        cx, cy = at(x, y)
        pattern, colour = pattern_of(group.id)
        marks.append(
            GroupMark(group.id, group.name, pattern, colour, x, y, cx, cy, weight, len(members))
        )
    return MapView(WIDTH, HEIGHT, circles, marks)
