// Seed statements: read from the text box (one per line) or a CSV file's first column, and
// checked line by line before anything is sent.

const HEADERS = new Set(["text", "statement", "statements", "comment", "comment-body", "comment_body", "seed", "seeds"]);

// The rows of a CSV text (RFC 4180: quotes, doubled quotes, line breaks inside quotes).
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (char === '"') {
        quoted = false;
      } else {
        cell += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ",") {
      row.push(cell);
      cell = "";
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text[i + 1] === "\n") i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else {
      cell += char;
    }
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

// { seeds, header } of a CSV file's text: the first column, a line break inside a cell made a
// space, and the first row left out when it is a header ("text", "comment-body", ...).
export function seedsFromCsv(text) {
  const rows = parseCsv(text.replace(/^\uFEFF/, ""));
  let header = false;
  if (rows.length && HEADERS.has((rows[0][0] || "").trim().toLowerCase())) {
    rows.shift();
    header = true;
  }
  const seeds = rows.map((row) => (row[0] || "").replace(/\s*[\r\n]+\s*/g, " ").trim());
  while (seeds.length && seeds[seeds.length - 1] === "") seeds.pop();
  return { seeds, header };
}

// What two statements must share to be duplicates, as the server folds them: case and spaces.
function key(text) {
  return text.normalize("NFKC").toLowerCase().split(/\s+/).filter(Boolean).join(" ");
}

// { seeds, problems } of the text box: each problem is { key, n, ...values } for its message.
// Blank lines at the end are ignored; a blank line between statements is a problem.
export function checkSeeds(text, limit) {
  const lines = text.split(/\r\n|\r|\n/);
  while (lines.length && lines[lines.length - 1].trim() === "") lines.pop();
  const seeds = [];
  const problems = [];
  const seen = new Map();
  lines.forEach((raw, index) => {
    const n = index + 1;
    const line = raw.trim();
    if (!line) {
      problems.push({ key: "empty_line", n });
      return;
    }
    const length = [...line].length; // characters, as the server counts them
    if (length > limit) {
      problems.push({ key: "too_long", n, length, limit });
      return;
    }
    const folded = key(line);
    if (seen.has(folded)) {
      problems.push({ key: "duplicate", n, first: seen.get(folded) });
      return;
    }
    seen.set(folded, n);
    seeds.push(line);
  });
  return { seeds, problems };
}
