// What a shape looks like: its outline (for the canvas and for SVG), its bounds, whether a
// point hits it. Works on the plain snapshots model.readShape makes, in board coordinates
// and without the dx,dy offset (callers translate), so a moved shape keeps its cached path.

export const FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
export const LINE_HEIGHT = 1.25;

export function font(size) {
  return `${size}px ${FONT_FAMILY}`;
}

// Trace a shape's outline into `sink`, anything with moveTo/lineTo/quadraticCurveTo/
// ellipse/rect: a Path2D for the canvas, or SvgPath below for export. One tracer for
// both keeps the exported picture identical to the screen.
export function trace(s, sink) {
  switch (s.type) {
    case "pen":
      return traceStroke(s.pts, sink);
    case "line":
      sink.moveTo(s.x1, s.y1);
      return sink.lineTo(s.x2, s.y2);
    case "rect": {
      const r = normalRect(s);
      return sink.rect(r.x, r.y, r.w, r.h);
    }
    case "ellipse": {
      const r = normalRect(s);
      return sink.ellipse(r.x + r.w / 2, r.y + r.h / 2, r.w / 2, r.h / 2, 0, 0, 2 * Math.PI);
    }
  }
}

// A freehand stroke, smoothed: a quadratic curve through each sampled point, from the
// midpoint before it to the midpoint after it. The curve passes near every sample without
// the corners a polyline shows, and costs nothing to compute.
function traceStroke(pts, sink) {
  const n = pts.length >> 1;
  if (n === 0) return;
  sink.moveTo(pts[0], pts[1]);
  if (n === 1) return sink.lineTo(pts[0] + 0.01, pts[1]); // a dot: round caps draw it
  if (n === 2) return sink.lineTo(pts[2], pts[3]);
  for (let i = 1; i < n - 1; i++) {
    const x = pts[2 * i];
    const y = pts[2 * i + 1];
    sink.quadraticCurveTo(x, y, (x + pts[2 * i + 2]) / 2, (y + pts[2 * i + 3]) / 2);
  }
  sink.lineTo(pts[2 * n - 2], pts[2 * n - 1]);
}

export function normalRect(s) {
  return {
    x: Math.min(s.x, s.x + s.w),
    y: Math.min(s.y, s.y + s.h),
    w: Math.abs(s.w),
    h: Math.abs(s.h),
  };
}

// Text is measured with the canvas' own metrics (one shared, never shown, context).
let measureCtx = null;

export function textLines(s) {
  return s.text.split("\n");
}

export function textSize(s) {
  measureCtx ||= document.createElement("canvas").getContext("2d");
  measureCtx.font = font(s.size);
  const lines = textLines(s);
  const w = Math.max(...lines.map((line) => measureCtx.measureText(line).width));
  return { w, h: lines.length * s.size * LINE_HEIGHT };
}

// Bounds in board coordinates, offset included, padded by half the stroke.
export function bounds(s) {
  let x0, y0, x1, y1;
  switch (s.type) {
    case "pen": {
      const p = s.pts;
      x0 = y0 = Infinity;
      x1 = y1 = -Infinity;
      for (let i = 0; i + 1 < p.length; i += 2) {
        if (p[i] < x0) x0 = p[i];
        if (p[i] > x1) x1 = p[i];
        if (p[i + 1] < y0) y0 = p[i + 1];
        if (p[i + 1] > y1) y1 = p[i + 1];
      }
      if (x0 === Infinity) x0 = y0 = x1 = y1 = 0;
      break;
    }
    case "line":
      [x0, x1] = [Math.min(s.x1, s.x2), Math.max(s.x1, s.x2)];
      [y0, y1] = [Math.min(s.y1, s.y2), Math.max(s.y1, s.y2)];
      break;
    case "rect":
    case "ellipse": {
      const r = normalRect(s);
      [x0, y0, x1, y1] = [r.x, r.y, r.x + r.w, r.y + r.h];
      break;
    }
    case "text": {
      const { w, h } = textSize(s);
      [x0, y0, x1, y1] = [s.x, s.y, s.x + w, s.y + h];
      break;
    }
  }
  const pad = s.type === "text" ? 0 : s.width / 2;
  return { x0: x0 + s.dx - pad, y0: y0 + s.dy - pad, x1: x1 + s.dx + pad, y1: y1 + s.dy + pad };
}

export function intersects(a, b) {
  return a.x0 <= b.x1 && a.x1 >= b.x0 && a.y0 <= b.y1 && a.y1 >= b.y0;
}

export function union(a, b) {
  if (!a) return b;
  return {
    x0: Math.min(a.x0, b.x0),
    y0: Math.min(a.y0, b.y0),
    x1: Math.max(a.x1, b.x1),
    y1: Math.max(a.y1, b.y1),
  };
}

// Hit testing asks the canvas itself (isPointInStroke) on a context nobody sees, with the
// stroke widened by the tolerance: exact for curves and ellipses, no geometry of our own.
let hitCtx = null;

export function hits(entry, pathOf, x, y, tolerance) {
  const { s, bounds: b } = entry;
  if (x < b.x0 - tolerance || x > b.x1 + tolerance || y < b.y0 - tolerance || y > b.y1 + tolerance) {
    return false;
  }
  if (s.type === "text") return true;
  hitCtx ||= document.createElement("canvas").getContext("2d");
  hitCtx.lineWidth = s.width + 2 * tolerance;
  hitCtx.lineCap = hitCtx.lineJoin = "round";
  return hitCtx.isPointInStroke(pathOf(entry), x - s.dx, y - s.dy);
}

// Collects the same calls as a Path2D into SVG path data (numbers kept short).
export class SvgPath {
  constructor() {
    this.d = [];
  }
  moveTo(x, y) {
    this.d.push(`M${n(x)} ${n(y)}`);
  }
  lineTo(x, y) {
    this.d.push(`L${n(x)} ${n(y)}`);
  }
  quadraticCurveTo(cx, cy, x, y) {
    this.d.push(`Q${n(cx)} ${n(cy)} ${n(x)} ${n(y)}`);
  }
  rect(x, y, w, h) {
    this.d.push(`M${n(x)} ${n(y)}h${n(w)}v${n(h)}h${n(-w)}z`);
  }
  ellipse(cx, cy, rx, ry) {
    // two arcs: SVG cannot draw a full ellipse with one
    this.d.push(
      `M${n(cx - rx)} ${n(cy)}a${n(rx)} ${n(ry)} 0 1 0 ${n(2 * rx)} 0a${n(rx)} ${n(ry)} 0 1 0 ${n(-2 * rx)} 0z`
    );
  }
  toString() {
    return this.d.join("");
  }
}

function n(v) {
  return String(Math.round(v * 100) / 100);
}
