// The side app's script, served from the folder beside its module.
const config = JSON.parse(document.getElementById("side-config").textContent);
document.getElementById("out").textContent = config.greeting;
