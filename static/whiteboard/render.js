// Draws the board on the canvas, fast enough for boards of thousands of strokes:
//
// - a frame is drawn on requestAnimationFrame, and only when something changed;
// - each shape keeps a snapshot, its bounds and a Path2D; observeDeep on the shapes map
//   refreshes only the shapes a transaction touched, and keeps the path when only the
//   offset, colour, width or z changed (a drag never re-traces a stroke);
// - shapes outside the viewport are skipped, and a shape under 1.5 pixels across is a dot.
import * as Y from "yjs";
import { bounds, font, hits, intersects, LINE_HEIGHT, textLines, trace, union } from "./geometry.js";
import { readShape, STYLE_KEYS } from "./model.js";

const GRID = 24; // board units between grid dots at 100%

export class Renderer {
  constructor(canvas, board, view) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.board = board;
    this.view = view;
    this.entries = new Map(); // id -> { id, s: snapshot, bounds, path: Path2D | null }
    this.order = []; // ids, bottom to top
    this.orderStale = true;
    this.selected = null; // the selected shape's id (local only)
    this.hidden = null; // a text shape being edited: the editor shows it instead
    this.listeners = new Set(); // told the ids a transaction changed
    this.frameRequested = false;
    this.grid = null;
    board.shapes.forEach((_, id) => this.refresh(id, true));
    board.shapes.observeDeep((events) => this.changed(events));
  }

  // Which shapes a transaction touched, and whether their outline changed.
  changed(events) {
    const touched = new Map();
    for (const event of events) {
      if (event.target === this.board.shapes) {
        for (const id of event.keysChanged) touched.set(id, true);
        continue;
      }
      const id = event.path[0];
      const outline =
        event.path.length > 1 || // inside pts
        [...(event.keysChanged || [])].some((key) => !STYLE_KEYS.has(key));
      touched.set(id, touched.get(id) || outline);
    }
    for (const [id, outline] of touched) this.refresh(id, outline);
    for (const listener of this.listeners) listener(touched);
    this.invalidate();
  }

  refresh(id, outline) {
    const shape = this.board.shapes.get(id);
    const s = shape instanceof Y.Map ? readShape(shape) : null;
    const old = this.entries.get(id);
    if (!s) {
      if (old) this.entries.delete(id);
      this.orderStale = true;
      return;
    }
    const path = outline || !old ? null : old.path; // traced lazily, when first drawn
    this.entries.set(id, { id, s, bounds: bounds(s), path });
    if (!old || old.s.z !== s.z) this.orderStale = true;
  }

  // Ids bottom to top: by z, ties (two people adding at once) broken the same everywhere.
  sorted() {
    if (this.orderStale) {
      const e = this.entries;
      this.order = [...e.keys()].sort((a, b) => e.get(a).s.z - e.get(b).s.z || (a < b ? -1 : 1));
      this.orderStale = false;
    }
    return this.order;
  }

  pathOf(entry) {
    if (!entry.path && entry.s.type !== "text") {
      entry.path = new Path2D();
      trace(entry.s, entry.path);
    }
    return entry.path;
  }

  invalidate() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => this.frame());
  }

  frame() {
    this.frameRequested = false;
    const { ctx, view } = this;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(view.width * dpr);
    const h = Math.round(view.height * dpr);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w; // resizing also clears
      this.canvas.height = h;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, w, h);
    this.drawGrid(dpr);
    ctx.setTransform(dpr * view.scale, 0, 0, dpr * view.scale, dpr * view.x, dpr * view.y);
    this.paint(ctx, view.scale, view.visible());
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.drawSelection();
  }

  // Paint the shapes meeting `area` (all when null); `scale` is device pixels per unit.
  paint(ctx, scale, area) {
    ctx.lineCap = ctx.lineJoin = "round";
    for (const id of this.sorted()) {
      const entry = this.entries.get(id);
      if (id === this.hidden || (area && !intersects(entry.bounds, area))) continue;
      this.paintOne(ctx, entry, scale);
    }
  }

  paintOne(ctx, entry, scale) {
    const { s, bounds: b } = entry;
    if (s.type === "text") {
      ctx.fillStyle = s.color;
      ctx.font = font(s.size);
      ctx.textBaseline = "middle";
      const lh = s.size * LINE_HEIGHT;
      textLines(s).forEach((line, i) => ctx.fillText(line, s.x + s.dx, s.y + s.dy + (i + 0.5) * lh));
      return;
    }
    if ((b.x1 - b.x0) * scale < 1.5 && (b.y1 - b.y0) * scale < 1.5) {
      ctx.fillStyle = s.color; // too small to tell apart: one pixel says "something here"
      ctx.fillRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
      return;
    }
    ctx.strokeStyle = s.color;
    ctx.lineWidth = s.width;
    ctx.translate(s.dx, s.dy);
    ctx.stroke(this.pathOf(entry));
    ctx.translate(-s.dx, -s.dy);
  }

  // A dot grid as one pattern fill; dots thin out (spacing doubles) when zoomed far out.
  drawGrid(dpr) {
    const { ctx, view } = this;
    let step = GRID * view.scale;
    while (step < 12) step *= 2;
    if (!this.grid) {
      const tile = document.createElement("canvas");
      tile.width = tile.height = 64;
      const t = tile.getContext("2d");
      t.fillStyle = "#c9d0db";
      for (const [x, y] of [[0, 0], [64, 0], [0, 64], [64, 64]]) {
        t.beginPath(); // a quarter dot in each corner: one whole dot where four tiles meet
        t.arc(x, y, 3.5, 0, 2 * Math.PI);
        t.fill();
      }
      this.grid = ctx.createPattern(tile, "repeat");
    }
    const k = (step * dpr) / 64;
    this.grid.setTransform(new DOMMatrix([k, 0, 0, k, view.x * dpr, view.y * dpr]));
    ctx.fillStyle = this.grid;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  drawSelection() {
    const entry = this.selected && this.entries.get(this.selected);
    if (!entry) return;
    const { ctx, view } = this;
    const a = view.toScreen(entry.bounds.x0, entry.bounds.y0);
    const b = view.toScreen(entry.bounds.x1, entry.bounds.y1);
    ctx.strokeStyle = "#2f6fed";
    ctx.lineWidth = 1.5;
    ctx.setLineDash([5, 4]);
    ctx.strokeRect(a.x - 4, a.y - 4, b.x - a.x + 8, b.y - a.y + 8);
    ctx.setLineDash([]);
  }

  // The topmost shape under a board point, within `tolerance` screen pixels.
  hitTest(x, y, tolerance = 6) {
    const order = this.sorted();
    const tol = tolerance / this.view.scale;
    const pathOf = (entry) => this.pathOf(entry);
    for (let i = order.length - 1; i >= 0; i--) {
      const entry = this.entries.get(order[i]);
      if (hits(entry, pathOf, x, y, tol)) return entry.id;
    }
    return null;
  }

  contentBounds() {
    let b = null;
    for (const entry of this.entries.values()) b = union(b, entry.bounds);
    return b;
  }
}
