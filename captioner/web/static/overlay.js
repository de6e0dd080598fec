"use strict";
(() => {
  const cfg = JSON.parse(document.getElementById("cfg").textContent);
  const box = document.getElementById("captions");
  const root = document.documentElement;
  let partialEl = null, fadeTimer = 0, emptyTimer = 0, retryMs = cfg.retry_ms, es = null;

  function empty() { box.replaceChildren(); partialEl = null; }
  function stopTimers() { clearTimeout(fadeTimer); clearTimeout(emptyTimer); }
  function reveal() {
    clearTimeout(emptyTimer);
    // Fading out means the old text is stale: start afresh instead of bringing it back.
    if (box.classList.contains("faded")) { empty(); box.classList.remove("faded"); }
  }
  function arm(ageS) {
    clearTimeout(fadeTimer);
    if (cfg.clear > 0) fadeTimer = setTimeout(fadeOut, Math.max(0, cfg.clear - ageS) * 1000);
  }
  function fadeOut() {
    box.classList.add("faded");
    emptyTimer = setTimeout(empty, cfg.fade * 1000 + 50);
  }
  function block(text, kind, animate) {
    const el = document.createElement("div");
    const span = document.createElement("span");
    span.textContent = text;
    el.append(span);
    el.className = "caption" + (kind === "partial" ? " partial" : "") + (animate ? " enter" : "");
    el.dataset.kind = kind;
    box.append(el);
    return el;
  }
  function prune() {
    // Captions that scrolled off the top entirely are gone for good; keep the DOM small.
    const top = box.getBoundingClientRect().top;
    while (box.children.length > 1 && box.firstElementChild.getBoundingClientRect().bottom <= top + 0.5) {
      box.firstElementChild.remove();
    }
  }
  function fresh(c) { return cfg.clear <= 0 || c.age_s < cfg.clear; }

  function onEvent(ev) {
    if (ev.kind === "replay") {
      stopTimers(); empty(); box.classList.remove("faded");
      const shown = ev.captions.filter(fresh).slice(-cfg.lines);
      for (const c of shown) block(c.text, "final", false);
      if (cfg.partials && ev.partial && fresh(ev.partial)) {
        partialEl = block(ev.partial.text, "partial", false);
        shown.push(ev.partial);
      }
      if (shown.length) arm(Math.min(...shown.map((c) => c.age_s)));
      prune();
      root.dataset.state = "live";
    } else if (ev.kind === "clear") {
      stopTimers(); empty(); box.classList.remove("faded");
    } else if (ev.kind === "partial") {
      if (!cfg.partials) return;
      if (!ev.text) { if (partialEl) { partialEl.remove(); partialEl = null; } return; }
      reveal();
      if (partialEl) partialEl.firstElementChild.textContent = ev.text;
      else partialEl = block(ev.text, "partial", true);
      prune(); arm(ev.age_s);
    } else if (ev.kind === "final") {
      if (!ev.text) return;
      reveal();
      if (partialEl) {  // the final takes the partial's place: no jump, no second fade-in
        partialEl.firstElementChild.textContent = ev.text;
        partialEl.classList.remove("partial");
        partialEl.dataset.kind = "final";
        partialEl = null;
      } else {
        block(ev.text, "final", true);
      }
      prune(); arm(ev.age_s);
    }
    root.dataset.events = String(Number(root.dataset.events || 0) + 1);
  }

  function connect() {
    root.dataset.state = "connecting";
    es = new EventSource(cfg.events);
    es.onopen = () => { retryMs = cfg.retry_ms; };
    es.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      onEvent(ev);
    };
    es.onerror = () => {
      root.dataset.state = "connecting";
      // EventSource retries by itself after network errors, but gives up for good on an HTTP error.
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
      }
    };
  }
  connect();
})();
