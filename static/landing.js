// The landing page: each app's live numbers over the whole cluster, every 5 s (/api/apps).
"use strict";

async function refresh() {
  try {
    const answer = await fetch("/api/apps");
    if (!answer.ok) return;
    for (const app of (await answer.json()).apps) {
      const el = document.querySelector(`.live[data-app="${CSS.escape(app.name)}"]`);
      if (el) {
        el.textContent = Object.entries(app.live).map(([label, n]) => `${n} ${label}`).join(" · ");
      }
    }
  } catch (err) {
    // the numbers stay as they were; the next refresh tries again
  }
}

refresh();
setInterval(refresh, 5000);
