// `report watch`: the page follows the report as it is saved. The server says when
// something changed (server-sent events); the page then fetches the new content and
// swaps it in place, keeping its scroll position and its fonts. The content is a series of
// blocks (the cover, the contents, each chapter), each after a comment <!--report-block:KEY-->;
// the server sends only the blocks that changed since the version the page shows, so that
// a save in a long book makes the browser parse and lay out one chapter, not the book.
(() => {
  "use strict";
  const main = document.getElementById("report-preview");
  const status = document.getElementById("report-status");
  const css = document.getElementById("report-css");
  let version = Number(main.dataset.version);
  let running = false;
  let again = false;
  const MARK = "report-block:";

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
    if ((state.html !== null || state.blocks !== null) && state.version !== version) {
      if (css.getAttribute("href") !== state.css) css.setAttribute("href", state.css);
      if (state.html !== null) main.innerHTML = state.html;
      else if (!state.blocks.every(([key, html]) => replaceBlock(key, html))) {
        version = -1; // a block not found: ask for the whole report
        again = true;
        return;
      }
      main.dataset.version = String(state.version);
      main.dataset.ok = String(state.ok);
      version = state.version;
      if (state.ok && state.changed.length === 1) reveal(state.changed[0]);
      shown(state.version);
    }
    status.textContent = state.status;
    status.dataset.state = state.status_kind;
  }

  function isMark(node) {
    return node.nodeType === Node.COMMENT_NODE && node.data.startsWith(MARK);
  }

  // The nodes after the block's mark, up to the next mark, replaced by the block's new HTML.
  function replaceBlock(key, html) {
    const mark = Array.prototype.find.call(main.childNodes, (node) => isMark(node) && node.data === MARK + key);
    if (!mark) return false;
    while (mark.nextSibling && !isMark(mark.nextSibling)) mark.nextSibling.remove();
    const range = document.createRange();
    range.selectNodeContents(main);
    mark.after(range.createContextualFragment(html));
    return true;
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
