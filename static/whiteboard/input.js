// Pointer input on the canvas. Decides what a gesture is, then feeds it on:
//
// - one mouse, pen or finger: the current tool (or panning: hand tool, middle button,
//   Space held, or the select tool on empty space);
// - two fingers: pinch to zoom and drag to pan (a stroke the first finger began is
//   discarded, so a pinch never leaves a scribble);
// - the wheel zooms around the pointer (a trackpad pinch arrives as Ctrl+wheel);
//   Shift+wheel and horizontal scrolling pan.
//
// A touch waits until it moves a few pixels (or lifts) before it starts the tool: that is
// how a second finger landing a moment later becomes a pinch instead of a dot.
import { MAX_SCALE, MIN_SCALE } from "./view.js";

const TOUCH_SLOP = 4; // px a finger moves before it counts as drawing

export class Input {
  // app: { view, tools, renderer, presence, tool (name), readOnly, finishText(), editText() }
  constructor(canvas, app) {
    this.canvas = canvas;
    this.app = app;
    this.pointers = new Map(); // pointerId -> screen point, for the pointers that are down
    this.mode = null; // "pending" | "tool" | "pan" | "pinch" | "idle" while pointers are down
    this.spaceDown = false;
    this.over = false; // the pointer is over the canvas
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    canvas.addEventListener("pointerup", (e) => this.up(e));
    canvas.addEventListener("pointercancel", (e) => this.up(e));
    canvas.addEventListener("pointerenter", () => (this.over = true));
    canvas.addEventListener("pointerleave", () => {
      this.over = false;
      app.presence.pointer(null);
    });
    canvas.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    canvas.addEventListener("dblclick", (e) => this.doubleClick(e));
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    window.addEventListener("keydown", (e) => this.space(e, true));
    window.addEventListener("keyup", (e) => this.space(e, false));
    window.addEventListener("blur", () => (this.spaceDown = false));
  }

  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  board(pt) {
    return this.app.view.toBoard(pt.x, pt.y);
  }

  get tool() {
    return this.app.tools[this.app.tool];
  }

  down(e) {
    if (e.button === 2) return; // the context menu button does nothing here
    // No focus change, text selection or emulated mouse events: the board handles it all.
    // Whatever had focus (the title, a text being typed) is done with, though.
    e.preventDefault();
    this.app.finishText();
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
    this.canvas.setPointerCapture(e.pointerId);
    const pt = this.local(e);
    this.pointers.set(e.pointerId, pt);
    if (this.pointers.size === 2 && e.pointerType === "touch") return this.startPinch();
    if (this.pointers.size > 1) return; // a second mouse button while dragging: ignore
    if (e.button === 1 || this.spaceDown || !this.tool) {
      this.mode = "pan"; // middle button, Space, or the hand tool (no drawing tool)
    } else if (e.pointerType === "touch") {
      this.mode = "pending";
      this.downAt = pt;
    } else {
      this.startTool(pt);
    }
    this.updateCursor();
  }

  startTool(pt) {
    this.mode = this.tool.begin(this.board(pt)) === "pan" ? "pan" : "tool";
  }

  move(e) {
    const pt = this.local(e);
    this.app.presence.pointer(this.board(pt));
    const prev = this.pointers.get(e.pointerId);
    if (!prev) return this.hover(pt);
    this.pointers.set(e.pointerId, pt);
    if (this.mode === "pending" && Math.hypot(pt.x - this.downAt.x, pt.y - this.downAt.y) > TOUCH_SLOP) {
      this.startTool(this.downAt);
    }
    if (this.mode === "tool") {
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      const points = (events.length ? events : [e]).map((c) => this.board(this.local(c)));
      this.tool.move(points, e);
    } else if (this.mode === "pan") {
      this.app.view.panBy(pt.x - prev.x, pt.y - prev.y);
    } else if (this.mode === "pinch") {
      this.updatePinch();
    }
  }

  up(e) {
    if (!this.pointers.delete(e.pointerId)) return;
    const at = this.board(this.local(e));
    if (this.mode === "pending") this.startTool(this.downAt); // a tap
    if (this.mode === "tool") this.tool.end(at);
    if (this.pointers.size === 0) this.mode = null;
    else if (this.mode === "pinch") this.mode = "idle"; // until the last finger lifts
    this.updateCursor();
  }

  startPinch() {
    if (this.mode === "tool") this.tool.cancel();
    const [a, b] = [...this.pointers.values()];
    const { view } = this.app;
    this.mode = "pinch";
    this.pinch = {
      distance: Math.max(1, Math.hypot(b.x - a.x, b.y - a.y)),
      // the board point under the fingers' midpoint stays under it
      anchor: this.board({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }),
      scale: view.scale,
    };
  }

  updatePinch() {
    const [a, b] = [...this.pointers.values()];
    const { distance, anchor, scale } = this.pinch;
    const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, (scale * Math.hypot(b.x - a.x, b.y - a.y)) / distance));
    const mx = (a.x + b.x) / 2;
    const my = (a.y + b.y) / 2;
    this.app.view.set(mx - anchor.x * s, my - anchor.y * s, s);
  }

  wheel(e) {
    e.preventDefault(); // and no page zoom on Ctrl+wheel
    const unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1; // lines, pages
    const dx = e.deltaX * unit;
    const dy = e.deltaY * unit;
    const { view } = this.app;
    if (e.shiftKey && !e.ctrlKey) return view.panBy(-(dx || dy), 0);
    if (!e.ctrlKey && Math.abs(dx) > Math.abs(dy)) return view.panBy(-dx, 0);
    const pt = this.local(e);
    view.zoomAt(Math.exp(-dy * (e.ctrlKey ? 0.01 : 0.002)), pt.x, pt.y);
  }

  doubleClick(e) {
    if (this.app.readOnly || !["select", "text"].includes(this.app.tool)) return;
    const p = this.board(this.local(e));
    const id = this.app.renderer.hitTest(p.x, p.y, 2);
    if (id && this.app.renderer.entries.get(id).s.type === "text") this.app.editText(p, id);
  }

  // Space held: pan with the primary button, whatever the tool. Typing a space in a field
  // stays typing; on a focused button it stays a click unless the pointer is on the board.
  space(e, down) {
    if (e.key !== " ") return;
    if (!down) {
      if (!this.spaceDown) return;
      e.preventDefault();
      this.spaceDown = false;
      return this.updateCursor();
    }
    const target = e.target instanceof Element ? e.target : document.body;
    if (target.closest("input, textarea, [contenteditable]")) return;
    if (target.closest("button, summary, a, dialog") && !this.over) return;
    e.preventDefault(); // no page scroll, no button click
    this.spaceDown = true;
    this.updateCursor();
  }

  hover(pt) {
    // The select tool shows what a press would grab.
    if (this.app.tool !== "select" || this.spaceDown) return;
    const p = this.board(pt);
    this.canvas.style.cursor = this.app.renderer.hitTest(p.x, p.y) ? "move" : "";
  }

  updateCursor() {
    const panning = this.mode === "pan" || this.mode === "pinch";
    let cursor = "";
    if (panning) cursor = "grabbing";
    else if (this.spaceDown || !this.tool) cursor = "grab";
    this.canvas.style.cursor = cursor;
    this.canvas.dataset.cursor = this.app.tool; // CSS picks the tool's cursor
  }
}
