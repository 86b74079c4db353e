// Console pages print times as epoch seconds in data-epoch; show them as local time.
// Pages that load parts later (the session page) call consoleLocalTimes on the new part.
function consoleLocalTimes(root) {
  for (const el of root.querySelectorAll("[data-epoch]")) {
    const t = Number(el.dataset.epoch);
    if (Number.isFinite(t) && t > 0) el.textContent = new Date(t * 1000).toLocaleString();
  }
}
window.consoleLocalTimes = consoleLocalTimes;
consoleLocalTimes(document);
