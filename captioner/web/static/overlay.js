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
  function fill(el, c) {
    // Who said it: data-speaker (the name) and speaker-<n> (the order first heard) for CSS, the label as its own
    // element so it can have its own colour. Everything goes in as text, never as markup.
    const span = el.firstElementChild, sp = c.speaker;
    for (const k of [...el.classList]) if (k.startsWith("speaker-")) el.classList.remove(k);
    delete el.dataset.speaker;
    span.replaceChildren();
    if (sp) {
      el.dataset.speaker = sp.name;
      if (sp.number) el.classList.add("speaker-" + sp.number);
      if (sp.label) {
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = sp.label;
        span.append(label);
      }
    }
    span.append(c.text);
  }
  function block(c, kind, animate) {
    const el = document.createElement("div");
    el.className = "caption" + (kind === "partial" ? " partial" : "") + (animate ? " enter" : "");
    el.dataset.kind = kind;
    el.append(document.createElement("span"));
    fill(el, c);
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
      for (const c of shown) block(c, "final", false);
      if (cfg.partials && ev.partial && fresh(ev.partial)) {
        partialEl = block(ev.partial, "partial", false);
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
      if (partialEl) fill(partialEl, ev);
      else partialEl = block(ev, "partial", true);
      prune(); arm(ev.age_s);
    } else if (ev.kind === "final") {
      if (!ev.text) return;
      reveal();
      if (partialEl) {  // the final takes the partial's place: no jump, no second fade-in
        fill(partialEl, ev);
        partialEl.classList.remove("partial");
        partialEl.dataset.kind = "final";
        partialEl = null;
      } else {
        block(ev, "final", true);
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
