// The drawing tools. Each turns one pointer gesture into edits of the board:
//
//   begin(p)     the pointer went down at board point p; may return "pan" to hand the
//                gesture to panning (the select tool on empty space does)
//   move(pts, e) it moved: the board points since the last call (coalesced events, so a
//                fast stroke keeps its shape), and the event (for its modifier keys)
//   end(p)       it was lifted at board point p
//   cancel()     the gesture became something else (a second finger: a pinch)
//
// Shapes are written to the shared document while they are drawn, so collaborators see a
// stroke grow; each gesture is one undo step (board.step() at its start).
import { quantizer } from "./model.js";

// A stroke longer than this many points continues as a new shape: keeps each shape's
// update, path and hit test bounded however long someone scribbles without lifting.
const MAX_STROKE_POINTS = 2000;
// Pen samples closer than this (screen pixels) to the last one are dropped.
const MIN_STEP_PX = 2;

// Things every tool needs: { board, view, renderer, style: { color, width, textSize },
// select(id), editText(point, id) }.
export function makeTools(app) {
  return {
    select: new SelectTool(app),
    pen: new PenTool(app),
    line: new ShapeTool(app, "line"),
    rect: new ShapeTool(app, "rect"),
    ellipse: new ShapeTool(app, "ellipse"),
    text: new TextTool(app),
    eraser: new EraserTool(app),
  };
}

class PenTool {
  constructor(app) {
    this.app = app;
    this.id = null;
  }

  begin(p) {
    const { board, view } = this.app;
    board.step();
    this.q = quantizer(view.scale);
    this.last = { x: this.q(p.x), y: this.q(p.y) };
    this.count = 1;
    this.start([this.last.x, this.last.y]);
    this.item = board.current();
  }

  start(pts) {
    const { board, style } = this.app;
    this.id = board.add({ type: "pen", color: style.color, width: style.width }, pts);
  }

  move(points) {
    this.append(points, false);
  }

  append(points, final) {
    const minStep = MIN_STEP_PX / this.app.view.scale;
    const from = this.last;
    const pts = [];
    for (const p of points) {
      const x = this.q(p.x);
      const y = this.q(p.y);
      const d = Math.hypot(x - this.last.x, y - this.last.y);
      if (d < minStep && !(final && d > 0)) continue;
      pts.push(x, y);
      this.last = { x, y };
    }
    if (!pts.length) return;
    this.count += pts.length / 2;
    if (this.count > MAX_STROKE_POINTS) {
      // Go on as a new shape, starting where the last one ends: no gap in the line.
      this.start([from.x, from.y, ...pts]);
      this.count = 1 + pts.length / 2;
      return;
    }
    this.app.board.extend(this.id, pts);
  }

  end(p) {
    if (p) this.append([p], true); // the lift point, even if close to the last sample
    this.id = null;
  }

  cancel() {
    this.app.board.discard(this.item);
    this.id = null;
  }
}

// Line, rectangle and ellipse: drag from one corner (or end) to the other. Shift keeps
// lines at multiples of 45 degrees and boxes square.
class ShapeTool {
  constructor(app, type) {
    this.app = app;
    this.type = type;
    this.id = null;
  }

  begin(p) {
    const { board, view, style } = this.app;
    board.step();
    this.q = quantizer(view.scale);
    this.start = { x: this.q(p.x), y: this.q(p.y) };
    const { x, y } = this.start;
    const geometry =
      this.type === "line" ? { x1: x, y1: y, x2: x, y2: y } : { x, y, w: 0, h: 0 };
    this.id = board.add({ type: this.type, color: style.color, width: style.width, ...geometry });
    this.item = board.current();
  }

  move(points, event) {
    const p = points[points.length - 1];
    const shift = event.shiftKey;
    let dx = this.q(p.x) - this.start.x;
    let dy = this.q(p.y) - this.start.y;
    if (shift && this.type === "line") {
      const angle = Math.round(Math.atan2(dy, dx) / (Math.PI / 4)) * (Math.PI / 4);
      const len = Math.hypot(dx, dy);
      dx = this.q(Math.cos(angle) * len);
      dy = this.q(Math.sin(angle) * len);
    } else if (shift) {
      const side = Math.max(Math.abs(dx), Math.abs(dy));
      dx = Math.sign(dx || 1) * side;
      dy = Math.sign(dy || 1) * side;
    }
    const { x, y } = this.start;
    const change = this.type === "line" ? { x2: x + dx, y2: y + dy } : { w: dx, h: dy };
    this.app.board.update(this.id, change);
    this.size = Math.hypot(dx, dy) * this.app.view.scale;
  }

  end() {
    // A click without a drag: nothing worth keeping (and no empty undo step).
    if (!this.size || this.size < 3) this.app.board.discard(this.item);
    else this.app.select(this.id);
    this.id = null;
    this.size = 0;
  }

  cancel() {
    this.app.board.discard(this.item);
    this.id = null;
    this.size = 0;
  }
}

// Click a shape to select it, drag to move it (its dx,dy offset). On empty space the
// gesture pans, which is what a finger on a phone expects.
class SelectTool {
  constructor(app) {
    this.app = app;
    this.id = null;
  }

  begin(p) {
    const { board, renderer } = this.app;
    const id = renderer.hitTest(p.x, p.y);
    this.app.select(id);
    if (!id) return "pan";
    board.step();
    const shape = renderer.entries.get(id).s;
    this.id = id;
    this.origin = { x: p.x - shape.dx, y: p.y - shape.dy };
    this.q = quantizer(this.app.view.scale);
  }

  move(points) {
    const p = points[points.length - 1];
    this.app.board.update(this.id, { dx: this.q(p.x - this.origin.x), dy: this.q(p.y - this.origin.y) });
  }

  end() {
    this.id = null;
  }

  cancel() {
    this.id = null;
  }
}

// Click to place a text box (or click a text to edit it); the editor does the rest.
class TextTool {
  constructor(app) {
    this.app = app;
  }

  begin(p) {
    const { renderer } = this.app;
    const id = renderer.hitTest(p.x, p.y, 2);
    const isText = id && renderer.entries.get(id).s.type === "text";
    this.app.editText(p, isText ? id : null);
  }

  move() {}
  end() {}
  cancel() {}
}

// Drag over shapes to delete them; one gesture is one undo step.
class EraserTool {
  constructor(app) {
    this.app = app;
  }

  begin(p) {
    this.app.board.step();
    this.erase(p);
  }

  move(points) {
    for (const p of points) this.erase(p);
  }

  erase(p) {
    const id = this.app.renderer.hitTest(p.x, p.y, 8);
    if (id) this.app.board.remove([id]);
  }

  end() {}
  cancel() {}
}
