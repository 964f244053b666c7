// inquiry-router desk page: the one script (no inline script: the page's CSP forbids it).
// 1. The queue refreshes itself, so new inquiries appear without a reload; not while a
//    keyboard or mouse user is inside it, so focus is never pulled away.
// 2. The reroute form's intent list shows only the intents the chosen desk handles.
"use strict";

function refreshQueue(queue) {
  const seconds = Number(queue.dataset.refreshSeconds || 0);
  if (!seconds) return;
  setInterval(async () => {
    if (document.hidden || queue.contains(document.activeElement) || queue.matches(":hover")) return;
    try {
      const answer = await fetch(window.location.href, { credentials: "same-origin" });
      if (!answer.ok || answer.redirected) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("queue");
      if (fresh) queue.replaceChildren(...fresh.childNodes);
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
  }, seconds * 1000);
}

function filterIntents(form) {
  const desk = form.querySelector("#to_desk");
  const intent = form.querySelector("#intent");
  if (!desk || !intent) return;
  const update = () => {
    for (const group of intent.querySelectorAll("optgroup")) {
      const shown = !desk.value || group.dataset.desk === desk.value;
      group.hidden = !shown;
      group.disabled = !shown;
    }
    const chosen = intent.selectedOptions[0];
    if (chosen && chosen.parentElement.disabled) intent.value = "";
  };
  desk.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  const queue = document.getElementById("queue");
  if (queue) refreshQueue(queue);
  const reroute = document.getElementById("reroute");
  if (reroute) filterIntents(reroute);
});
