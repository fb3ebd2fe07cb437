// The board's shared data: a Yjs document, and the few edits the UI makes to it.
//
//   doc.getMap("shapes")  shape id -> Y.Map { type, color, width, z, dx, dy, ...geometry }
//   doc.getMap("meta")    title
//
// Geometry by type: pen -> pts (a Y.Array of flat numbers x0,y0,x1,y1,...); line -> x1,y1,
// x2,y2; rect and ellipse -> x,y,w,h; text -> x,y,text,size. Moving a shape sets its dx,dy
// offsets and never rewrites its points, so dragging a 2,000-point stroke sends two numbers.
//
// Every local edit runs in doc.transact(fn, LOCAL). The UndoManager tracks only that
// origin: undo takes back one's own edits and never a collaborator's.
import * as Y from "yjs";

export const LOCAL = Symbol("local edit");
export const TYPES = ["pen", "line", "rect", "ellipse", "text"];
// Keys whose change leaves a shape's outline as it was (its cached path stays valid).
export const STYLE_KEYS = new Set(["dx", "dy", "z", "color", "width"]);

export class Board {
  constructor(doc) {
    this.doc = doc;
    this.shapes = doc.getMap("shapes");
    this.meta = doc.getMap("meta");
    // One user action (a stroke, a drag, a text) is one undo step however long it takes:
    // captures never time out, and step() marks where the next action begins.
    this.undo = new Y.UndoManager(this.shapes, {
      trackedOrigins: new Set([LOCAL]),
      captureTimeout: Infinity,
    });
  }

  edit(fn) {
    this.doc.transact(fn, LOCAL);
  }

  // Start a new undo step: call once at the beginning of each user action.
  step() {
    this.undo.stopCapturing();
  }

  // The undo step the current action writes into (null before its first edit).
  current() {
    return this.undo.undoStack.at(-1) || null;
  }

  // Take back the action in progress as if it never happened (a click that drew a
  // zero-size box, a stroke that turned into a pinch): no empty undo step is left behind.
  discard(item) {
    if (!item || this.current() !== item) return;
    this.undo.undo();
    this.undo.clear(false, true);
  }

  // A new shape on top of all others. `props` holds plain values; `pts` (pen only) the
  // first points. Returns its id.
  add(props, pts) {
    const id = newId();
    const z = this.topZ() + 1;
    this.edit(() => {
      const shape = new Y.Map();
      this.shapes.set(id, shape); // integrate first: then every set below is one update
      for (const [key, value] of Object.entries({ ...props, z })) shape.set(key, value);
      if (pts) {
        const arr = new Y.Array();
        shape.set("pts", arr);
        arr.push(pts);
      }
    });
    return id;
  }

  update(id, changes) {
    const shape = this.shapes.get(id);
    if (!shape) return;
    this.edit(() => {
      for (const [key, value] of Object.entries(changes)) {
        if (shape.get(key) !== value) shape.set(key, value);
      }
    });
  }

  // Append points to a pen stroke: each call is one small update (a few bytes a point).
  extend(id, pts) {
    const arr = this.shapes.get(id)?.get("pts");
    if (arr && pts.length) this.edit(() => arr.push(pts));
  }

  remove(ids) {
    this.edit(() => {
      for (const id of ids) this.shapes.delete(id);
    });
  }

  topZ() {
    let z = 0;
    for (const shape of this.shapes.values()) z = Math.max(z, zOf(shape));
    return z;
  }

  bottomZ() {
    let z = Infinity;
    for (const shape of this.shapes.values()) z = Math.min(z, zOf(shape));
    return z === Infinity ? 0 : z;
  }

  get title() {
    return this.meta.get("title") || "";
  }

  setTitle(title) {
    // Not an undoable step (the UndoManager watches shapes only), but still ours.
    if (title !== this.title) this.edit(() => this.meta.set("title", title));
  }
}

// A plain snapshot of one shape, for drawing and export. Anyone with the edit link can
// write anything, so values are checked: numbers default when missing, and widths and
// sizes stay in a range a canvas draws quickly.
export function readShape(shape) {
  const s = {
    type: shape.get("type"),
    color: String(shape.get("color") || "#1e1e1e"),
    width: clamp(num(shape.get("width"), 2), 0.5, 200),
    z: num(shape.get("z"), 0),
    dx: num(shape.get("dx"), 0),
    dy: num(shape.get("dy"), 0),
  };
  switch (s.type) {
    case "pen": {
      const pts = shape.get("pts");
      s.pts = pts instanceof Y.Array ? pts.toArray().map((v) => num(v, 0)) : [];
      break;
    }
    case "line":
      for (const k of ["x1", "y1", "x2", "y2"]) s[k] = num(shape.get(k), 0);
      break;
    case "rect":
    case "ellipse":
      for (const k of ["x", "y", "w", "h"]) s[k] = num(shape.get(k), 0);
      break;
    case "text":
      s.x = num(shape.get("x"), 0);
      s.y = num(shape.get("y"), 0);
      s.size = clamp(num(shape.get("size"), 24), 4, 400);
      s.text = String(shape.get("text") ?? "");
      break;
    default:
      return null; // a type this client does not know: skip it rather than guess
  }
  return s;
}

function zOf(shape) {
  return shape instanceof Y.Map ? num(shape.get("z"), 0) : 0;
}

function num(v, fallback) {
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

// Coordinates are rounded before they are stored: integers at 100% zoom and below, halves,
// quarters or eighths when zoomed in. Such numbers are exact in float32, and Yjs stores an
// integer in 1-5 bytes and a float32 in 5, where an arbitrary float would take 9.
export function quantizer(scale) {
  const q = Math.min(8, 2 ** Math.max(0, Math.ceil(Math.log2(scale))));
  return (v) => Math.round(v * q) / q;
}

function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}
