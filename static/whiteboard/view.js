// The viewer's own pan and zoom: screen = board * scale + (x, y), in CSS pixels.
// Nothing here is shared; each person looks at the board their own way.

export const MIN_SCALE = 0.05;
export const MAX_SCALE = 20;

export class Viewport {
  constructor(onChange) {
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.width = 0; // the stage, set on resize
    this.height = 0;
    this.onChange = onChange;
  }

  toBoard(sx, sy) {
    return { x: (sx - this.x) / this.scale, y: (sy - this.y) / this.scale };
  }

  toScreen(bx, by) {
    return { x: bx * this.scale + this.x, y: by * this.scale + this.y };
  }

  // The board rectangle on screen, for culling.
  visible() {
    const a = this.toBoard(0, 0);
    const b = this.toBoard(this.width, this.height);
    return { x0: a.x, y0: a.y, x1: b.x, y1: b.y };
  }

  set(x, y, scale) {
    this.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
    this.x = x;
    this.y = y;
    this.onChange();
  }

  panBy(dx, dy) {
    this.set(this.x + dx, this.y + dy, this.scale);
  }

  // Zoom keeping the board point under (sx, sy) where it is: the wheel's and pinch's feel.
  zoomAt(factor, sx = this.width / 2, sy = this.height / 2) {
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    const p = this.toBoard(sx, sy);
    this.set(sx - p.x * scale, sy - p.y * scale, scale);
  }

  // Show the board rectangle `b` whole, centred, never zoomed in past 100%.
  fit(b, margin = 48) {
    if (!b) return this.set(this.width / 2, this.height / 2, 1);
    const w = Math.max(1, b.x1 - b.x0);
    const h = Math.max(1, b.y1 - b.y0);
    const scale = Math.min(1, (this.width - 2 * margin) / w, (this.height - 2 * margin) / h);
    const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
    this.set(this.width / 2 - ((b.x0 + b.x1) / 2) * s, this.height / 2 - ((b.y0 + b.y1) / 2) * s, s);
  }
}
