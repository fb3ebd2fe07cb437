// Typing a text shape: a <textarea> laid over the board where the text goes, in the size,
// colour and font it will be drawn with, following pan and zoom. Enter, Escape or a click
// elsewhere commits (Escape keeps what was typed, as in Excalidraw and tldraw: nothing
// typed is ever lost to a key), Shift+Enter starts a new line. Undo takes a text back.
import { font, LINE_HEIGHT, textSize } from "./geometry.js";
import { quantizer } from "./model.js";

export class TextEditor {
  // app: { board, view, renderer, style: { color, width, textSize } }; maxChars keeps one
  // text's update under the server's size limit.
  constructor(el, app, maxChars) {
    this.el = el;
    this.app = app;
    this.maxChars = maxChars;
    this.open = null; // { id | null, x, y, size, color } while editing
    el.maxLength = maxChars;
    el.addEventListener("input", () => this.layout());
    el.addEventListener("blur", () => this.commit());
    el.addEventListener("keydown", (e) => {
      e.stopPropagation(); // typing is not a shortcut
      if ((e.key === "Enter" && !e.shiftKey) || e.key === "Escape") {
        e.preventDefault();
        this.commit();
      }
    });
  }

  // Edit text shape `id`, or a new text whose first line is centred on board point `p`.
  start(p, id) {
    this.commit();
    const { renderer, style, view } = this.app;
    const entry = id && renderer.entries.get(id);
    if (entry) {
      const s = entry.s;
      this.open = { id, x: s.x + s.dx, y: s.y + s.dy, size: s.size, color: s.color };
      this.el.value = s.text;
      renderer.hidden = id; // the editor shows it while it changes
      renderer.invalidate();
    } else {
      const q = quantizer(view.scale);
      const size = style.textSize;
      this.open = { id: null, x: q(p.x), y: q(p.y - (size * LINE_HEIGHT) / 2), size, color: style.color };
      this.el.value = "";
    }
    this.el.hidden = false;
    this.layout();
    this.el.focus();
    this.el.setSelectionRange(this.el.value.length, this.el.value.length);
  }

  layout() {
    if (!this.open) return;
    const { view } = this.app;
    const { x, y, size, color } = this.open;
    const p = view.toScreen(x, y);
    const measured = textSize({ text: this.el.value || " ", size });
    Object.assign(this.el.style, {
      left: `${p.x}px`,
      top: `${p.y}px`,
      width: `${measured.w * view.scale + size * view.scale}px`, // room for the next letter
      height: `${measured.h * view.scale}px`,
      font: font(size * view.scale), // the shorthand first: it resets line-height
      lineHeight: String(LINE_HEIGHT),
      color,
    });
  }

  commit() {
    if (!this.open) return;
    const { board } = this.app;
    const { id, x, y, size, color } = this.open;
    const text = this.el.value.replace(/\s+$/, "").slice(0, this.maxChars);
    this.close();
    const exists = id && board.shapes.has(id);
    if (exists && text === board.shapes.get(id).get("text")) return;
    board.step();
    if (exists && !text) board.remove([id]);
    else if (exists) board.update(id, { text });
    else if (text) board.add({ type: "text", color, width: this.app.style.width, x, y, text, size });
  }

  close() {
    if (!this.open) return;
    this.open = null;
    this.el.hidden = true;
    this.el.blur();
    this.app.renderer.hidden = null;
    this.app.renderer.invalidate();
  }
}
