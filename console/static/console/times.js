// Console pages print times as epoch seconds in data-epoch; show them as local time.
for (const el of document.querySelectorAll("[data-epoch]")) {
  const t = Number(el.dataset.epoch);
  if (Number.isFinite(t) && t > 0) el.textContent = new Date(t * 1000).toLocaleString();
}
