// The session page asks the node holding the player to describe the session; the answer
// arrives through the nodes' report store within a report round. The page polls for it
// here, so no server thread sits waiting on another process.
(function () {
  const box = document.getElementById("session-live");
  if (!box) return;
  const url = box.dataset.describeUrl;
  const pollMs = Number(box.dataset.pollMs) || 150;
  const deadline = Date.now() + (Number(box.dataset.waitS) || 3) * 1000;

  function giveUp() {
    box.hidden = true;
    document.getElementById("not-online").hidden = false;
  }

  async function poll() {
    try {
      const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (resp.status === 200) {
        box.innerHTML = await resp.text();
        if (window.consoleLocalTimes) window.consoleLocalTimes(box);
        return;
      }
    } catch (err) {
      // A failed poll (the node restarting, a network blip) is retried until the deadline.
    }
    if (Date.now() < deadline) setTimeout(poll, pollMs);
    else giveUp();
  }
  poll();
})();
