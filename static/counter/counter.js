// The counter's page: one form. Its URL comes from the page (meta app-base), never hard-coded.
const base = document.querySelector('meta[name="app-base"]').content;
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = encodeURIComponent(document.getElementById("name").value || "visits");
  const r = await fetch(base + name, { method: "POST" });
  const body = await r.json();
  document.getElementById("out").textContent = r.ok ? body.name + " = " + body.value : body.error;
});
