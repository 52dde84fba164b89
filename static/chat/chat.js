// The demo chat: posts what the person types to the webhook (as a messaging platform would),
// and polls the outbox for the bot's replies and the user's session. One user per tab: the id
// is kept in sessionStorage, which each tab has to itself.
"use strict";
(function () {
  const app = document.getElementById("app");
  const $ = (id) => document.getElementById(id);
  let userId = sessionStorage.getItem("demo-user-id");
  if (!userId) {
    userId = "web-" + Math.random().toString(36).slice(2, 10);
    sessionStorage.setItem("demo-user-id", userId);
  }
  $("user-id").textContent = userId;
  let lastId = 0;
  let scheduled = [];

  function addMessage(message) {
    const li = document.createElement("li");
    li.className = message.from_bot ? "bot" : "user";
    li.textContent = message.text;
    $("messages").appendChild(li);
    li.scrollIntoView({ block: "end" });
  }

  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  function showNudge() {
    const nudge = scheduled.find((s) => s.target === "follow_up->nudge");
    if (!nudge) {
      $("nudge").hidden = true;
      return;
    }
    const seconds = Math.max(0, Math.round((Date.parse(nudge.due) - Date.now()) / 1000));
    $("nudge").textContent = seconds
      ? `No answer? The bot nudges you in ${seconds} s (scheduled step to follow_up->nudge).`
      : "The nudge is due: the RQ worker sends it any moment now.";
    $("nudge").hidden = false;
  }

  async function poll() {
    try {
      const query = new URLSearchParams({ user_id: userId, after: lastId });
      const response = await fetch(`${app.dataset.outbox}?${query}`);
      if (!response.ok) throw new Error((await response.json()).detail);
      const data = await response.json();
      for (const message of data.messages) {
        if (message.id <= lastId) continue; // two polls overlapped: already shown
        addMessage(message);
        lastId = message.id;
      }
      const session = data.session;
      $("slug").textContent = session ? session.slug : "none yet";
      $("previous").textContent = (session && session.previous) || "-";
      $("back-to").textContent = (session && session.back_to) || "-";
      $("admin-link").href = data.admin_url;
      const history = $("history");
      history.replaceChildren(
        ...data.history.map((t) => {
          const li = document.createElement("li");
          li.textContent = `${t.source || "(none)"} → ${t.target} (${t.method}, ${t.origin})`;
          return li;
        })
      );
      scheduled = data.scheduled;
      showNudge();
      showError("");
    } catch (error) {
      showError(`The demo server does not answer (${error.message}).`);
    }
  }

  $("send").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    try {
      const response = await fetch(app.dataset.webhook, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user_id: userId, text: text }),
      });
      if (!response.ok) throw new Error((await response.json()).detail);
    } catch (error) {
      showError(`Not sent: ${error.message}`);
    }
    poll();
  });

  poll();
  setInterval(poll, 1000);
  setInterval(showNudge, 1000);
})();
