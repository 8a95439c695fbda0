// The opinion map: participants as pixels on a <canvas> (ImageData, one pass over typed
// arrays: 100k points in a few milliseconds), and an SVG layer above it for what must stay
// sharp and be told apart without colour: each group's outline (its own line pattern and
// hatching), its letter in its own shape, and "you".

const SVG = "http://www.w3.org/2000/svg";
// Okabe-Ito colours: told apart by most colour-blind readers (and never the only cue).
export const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];
const NONE = "#8a8f98";
const DASHES = ["", "8 4", "2 3", "10 3 2 3", "1 5", "6 2 6 6"];
const ANGLES = [45, 135, 0, 90, 60, 120];

// The positions body of the API: columns of n float32 x, n float32 y and n int16 group.
export function decodePositions(buffer) {
  const n = buffer.byteLength / 10;
  return {
    n,
    x: new Float32Array(buffer, 0, n),
    y: new Float32Array(buffer, 4 * n, n),
    group: new Int16Array(buffer, 8 * n, n),
  };
}

// The data's bounds and each group's outline (a convex hull of the extreme points of 64
// columns, so O(n) however many participants there are) and centre.
export function summarise(data, k) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  let placed = 0;
  const { n, x, y, group } = data;
  for (let i = 0; i < n; i++) {
    const px = x[i], py = y[i];
    if (px !== px) continue; // NaN: not placed
    placed++;
    if (px < x0) x0 = px;
    if (px > x1) x1 = px;
    if (py < y0) y0 = py;
    if (py > y1) y1 = py;
  }
  if (x0 === Infinity) return { bounds: null, groups: [], placed };
  const columns = 64, width = (x1 - x0) || 1;
  const low = new Float32Array(k * columns).fill(Infinity);
  const high = new Float32Array(k * columns).fill(-Infinity);
  const sumX = new Float64Array(k), sumY = new Float64Array(k), count = new Uint32Array(k);
  for (let i = 0; i < n; i++) {
    const g = group[i], px = x[i], py = y[i];
    if (g < 0 || g >= k || px !== px) continue;
    const c = g * columns + Math.min(columns - 1, Math.floor(((px - x0) / width) * columns));
    if (py < low[c]) low[c] = py;
    if (py > high[c]) high[c] = py;
    sumX[g] += px; sumY[g] += py; count[g]++;
  }
  const groups = [];
  for (let g = 0; g < k; g++) {
    const points = [];
    for (let c = 0; c < columns; c++) {
      const at = g * columns + c;
      if (low[at] === Infinity) continue;
      const cx = x0 + ((c + 0.5) / columns) * width;
      points.push([cx, low[at]], [cx, high[at]]);
    }
    groups.push({
      hull: hull(points),
      centre: count[g] ? [sumX[g] / count[g], sumY[g] / count[g]] : null,
      size: count[g],
    });
  }
  return { bounds: [x0, x1, y0, y1], groups, placed };
}

// Andrew's monotone chain: the convex hull of a few hundred points.
function hull(points) {
  if (points.length < 3) return points;
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [], upper = [];
  for (const p of points) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 0) lower.pop();
    lower.push(p);
  }
  for (let i = points.length - 1; i >= 0; i--) {
    const p = points[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

function colourWord(hex) {
  // ImageData is bytes R, G, B, A: as one little-endian 32-bit word, A B G R.
  const v = parseInt(hex.slice(1), 16);
  return (0xff << 24) | ((v & 0xff) << 16) | (v & 0xff00) | (v >> 16);
}

function node(name, attributes = {}, parent = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

export function createMap(frame, canvas, overlay, { shapes, youText, onZoom = () => {} }) {
  let data = null, summary = null, pid = null, zoom = 1, centre = null;

  function transform(width, height) {
    const [x0, x1, y0, y1] = summary.bounds;
    const margin = 16;
    const scale = zoom * Math.min((width - 2 * margin) / ((x1 - x0) || 1), (height - 2 * margin) / ((y1 - y0) || 1));
    const [cx, cy] = centre || [(x0 + x1) / 2, (y0 + y1) / 2];
    return { sx: (px) => width / 2 + (px - cx) * scale, sy: (py) => height / 2 - (py - cy) * scale, scale };
  }

  function draw() {
    const width = Math.max(200, Math.floor(frame.clientWidth));
    const height = Math.min(480, Math.max(200, Math.round(width * 0.7)));
    canvas.width = width;
    canvas.height = height;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    overlay.setAttribute("viewBox", `0 0 ${width} ${height}`);
    overlay.setAttribute("width", width);
    overlay.setAttribute("height", height);
    overlay.replaceChildren();
    const context = canvas.getContext("2d");
    const image = context.createImageData(width, height);
    const pixels = new Uint32Array(image.data.buffer);
    pixels.fill(0xffffffff);
    if (!data || !summary.bounds) {
      context.putImageData(image, 0, 0);
      return;
    }
    const { sx, scale } = transform(width, height);
    const [x0, x1, y0, y1] = summary.bounds;
    const [cx, cy] = centre || [(x0 + x1) / 2, (y0 + y1) / 2];
    const ox = width / 2 - cx * scale, oy = height / 2 + cy * scale;
    const words = COLOURS.map(colourWord), none = colourWord(NONE);
    const { n, x, y, group } = data;
    for (let i = 0; i < n; i++) {
      const px = x[i];
      if (px !== px) continue;
      const col = (ox + px * scale) | 0, row = (oy - y[i] * scale) | 0;
      if (col < 0 || row < 0 || col >= width - 1 || row >= height - 1) continue;
      const g = group[i], word = g >= 0 ? words[g % words.length] : none;
      const at = row * width + col;
      pixels[at] = word; pixels[at + 1] = word; pixels[at + width] = word; pixels[at + width + 1] = word;
    }
    context.putImageData(image, 0, 0);
    drawOverlay(transform(width, height), sx);
  }

  function drawOverlay({ sx, sy }) {
    const defs = node("defs", {}, overlay);
    summary.groups.forEach((g, index) => {
      const colour = COLOURS[index % COLOURS.length];
      const pattern = node("pattern", {
        id: `hatch-${index}`, width: 8, height: 8, patternUnits: "userSpaceOnUse",
        patternTransform: `rotate(${ANGLES[index % ANGLES.length]})`,
      }, defs);
      node("line", { x1: 0, y1: 0, x2: 0, y2: 8, stroke: colour, "stroke-width": 1.5, "stroke-opacity": 0.45 }, pattern);
      if (g.hull.length >= 3) {
        node("polygon", {
          class: "hull",
          points: g.hull.map(([hx, hy]) => `${sx(hx).toFixed(1)},${sy(hy).toFixed(1)}`).join(" "),
          fill: `url(#hatch-${index})`, stroke: colour, "stroke-width": 2,
          "stroke-dasharray": DASHES[index % DASHES.length],
        }, overlay);
      }
    });
    summary.groups.forEach((g, index) => {
      if (!g.centre) return;
      const label = node("g", { class: "group-label", transform: `translate(${sx(g.centre[0]).toFixed(1)},${sy(g.centre[1]).toFixed(1)})` }, overlay);
      node("use", { href: `#shape-${shapes[index % shapes.length]}`, fill: "#fff", stroke: COLOURS[index % COLOURS.length], "stroke-width": 3 }, label);
      node("text", { y: 5, "text-anchor": "middle" }, label).textContent = String.fromCharCode(65 + index);
    });
    if (pid !== null && pid < data.n && data.x[pid] === data.x[pid]) {
      const you = node("g", { class: "you", transform: `translate(${sx(data.x[pid]).toFixed(1)},${sy(data.y[pid]).toFixed(1)})` }, overlay);
      node("circle", { r: 7, fill: "none", stroke: "#1b1d21", "stroke-width": 2.5 }, you);
      node("text", { x: 10, y: -8 }, you).textContent = youText;
    }
  }

  function zoomBy(factor) {
    zoom = Math.min(64, Math.max(1, zoom * factor));
    if (zoom === 1) centre = null;
    onZoom(zoom);
    draw();
  }

  function pan(dx, dy) {
    if (!summary || !summary.bounds) return;
    const [x0, x1, y0, y1] = summary.bounds;
    const [cx, cy] = centre || [(x0 + x1) / 2, (y0 + y1) / 2];
    const step = 0.1 / zoom;
    centre = [cx + dx * step * (x1 - x0), cy + dy * step * (y1 - y0)];
    draw();
  }

  frame.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const actions = {
      "+": () => zoomBy(1.5), "=": () => zoomBy(1.5), "-": () => zoomBy(1 / 1.5),
      "0": () => { zoom = 1; centre = null; onZoom(zoom); draw(); },
      ArrowLeft: () => pan(-1, 0), ArrowRight: () => pan(1, 0),
      ArrowUp: () => pan(0, 1), ArrowDown: () => pan(0, -1),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
  window.addEventListener("resize", () => draw());

  return {
    // New positions (decoded), the number of groups, and the viewer's pid (or null).
    update(positions, k, viewer) {
      data = positions;
      pid = viewer;
      summary = summarise(positions, k);
      draw();
      return summary;
    },
    zoomIn: () => zoomBy(1.5),
    zoomOut: () => zoomBy(1 / 1.5),
    reset: () => { zoom = 1; centre = null; onZoom(zoom); draw(); },
    draw,
  };
}
