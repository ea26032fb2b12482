// `report watch`: the page follows the report as it is saved. The server says when
// something changed (server-sent events); the page then fetches the new content and
// swaps it in place, keeping its scroll position and its fonts.
(() => {
  "use strict";
  const main = document.getElementById("report-preview");
  const status = document.getElementById("report-status");
  const css = document.getElementById("report-css");
  let version = Number(main.dataset.version);
  let running = false;
  let again = false;

  async function update() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const response = await fetch(`/__report/update?have=${version}`, { cache: "no-store" });
      apply(await response.json());
    } catch (error) {
      status.textContent = "preview server not reachable: is report watch still running?";
      status.dataset.state = "failed";
    }
    running = false;
    if (again) {
      again = false;
      update();
    }
  }

  function apply(state) {
    if (state.html !== null && state.version !== version) {
      if (css.getAttribute("href") !== state.css) css.setAttribute("href", state.css);
      main.innerHTML = state.html;
      main.dataset.version = String(state.version);
      main.dataset.ok = String(state.ok);
      version = state.version;
      if (state.ok && state.changed.length === 1) reveal(state.changed[0]);
      shown(state.version);
    }
    status.textContent = state.status;
    status.dataset.state = state.status_kind;
  }

  // Once painted, the page tells the server, which then builds the PDF and EPUB: until
  // then they would take the processor from the page.
  function shown(number) {
    requestAnimationFrame(() =>
      setTimeout(() => fetch(`/__report/shown?version=${number}`, { method: "POST" }).catch(() => {}), 0),
    );
  }

  function reveal(id) {
    const element = document.getElementById(id);
    if (!element) return;
    const box = element.getBoundingClientRect();
    if (box.bottom < 0 || box.top > window.innerHeight) element.scrollIntoView({ block: "start" });
    element.classList.remove("report-changed");
    void element.offsetWidth; // restart the animation
    element.classList.add("report-changed");
  }

  const events = new EventSource("/__report/events");
  events.addEventListener("change", update);
  events.addEventListener("open", update); // after a reconnection, catch up
})();
