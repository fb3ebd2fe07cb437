// Says so on the page when the bundle (static/build/whiteboard.js) did not load: it is built
// by `make bundle`. A plain script, not an inline handler: the pages' CSP allows no inline JS.
window.addEventListener("load", () => {
  if (!window.whiteboard) {
    const status = document.getElementById("status");
    if (status) status.textContent = "the page script is missing (run make bundle)";
  }
});
