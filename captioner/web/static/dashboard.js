"use strict";
(() => {
  const POLL_MS = @@POLL_MS@@, RECENT = @@RECENT@@, MAX_STREAMS = @@MAX_STREAMS@@, TOKEN_KEY = "captioner.token";
  const $ = (id) => document.getElementById(id);
  const root = document.documentElement;
  // Per language: the last finals shown, how they arrive ("sse" or "poll"), the event stream, poll bookkeeping.
  const langs = new Map();
  let busy = false, controlKey = "";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;  // every piece of data goes in as text, never as markup
    return e;
  }
  const ms = (s) => (s === null || s === undefined) ? "–"
    : (s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(2) + " s");
  const money = (v) => (v === null || v === undefined) ? "–" : Number(v).toFixed(4);

  // -- links, level, gate, cost, latency

  function renderLinks(links) {
    const items = Object.entries(links || {}).sort(([a], [b]) => a.localeCompare(b)).map(([name, l]) => {
      const li = el("li");
      li.dataset.link = name;
      li.append(el("span", "", name), el("span", "state state-" + l.state, l.state),
                el("span", "err", l.last_error || ""));
      return li;
    });
    $("links").replaceChildren(...items);
    if (!items.length) $("links").append(el("li", "dim", "no links yet"));
  }

  function dbfs(level) { return level > 0 ? 20 * Math.log10(level) : -Infinity; }
  function renderLevel(level, gate, audio) {
    // The level is that of the last chunk captured: with the device gone it would stay frozen at its last value.
    const live = !audio || audio.state === "connected";
    const db = live ? dbfs(level || 0) : -Infinity;
    // -60..0 dBFS across the bar: speech sits around -30..-10, which a linear RMS bar would barely show.
    const frac = Math.max(0, Math.min(1, (db + 60) / 60));
    $("meter-bar").style.width = (frac * 100).toFixed(1) + "%";
    $("meter").setAttribute("aria-valuenow", isFinite(db) ? db.toFixed(0) : "-60");
    $("level-text").textContent = !live ? "no input (audio " + audio.state + ")"
      : isFinite(db) ? db.toFixed(0) + " dBFS" : "silence";
    const state = gate ? gate.state : "unknown";
    const g = $("gate");
    g.textContent = gate ? state + (gate.held_by && gate.held_by.length ? " (" + gate.held_by.join(", ") + ")" : "")
                         : "unknown";
    g.className = "state state-" + state;
  }

  // Each named input (inputs:): its device, link, level, gate and cost; hidden for the single audio: input.
  function renderInputs(inputs, currency) {
    const rows = Object.entries(inputs || {}).map(([name, i]) => {
      const tr = el("tr");
      tr.dataset.input = name;
      const state = i.link ? i.link.state : "unknown";
      const db = dbfs(i.audio_level || 0);
      const level = state !== "connected" ? "–" : isFinite(db) ? db.toFixed(0) + " dBFS" : "silence";
      const gate = i.audio_gate ? i.audio_gate.state : "unknown";
      tr.append(el("td", "", name), el("td", "", i.device === null ? "default input" : String(i.device)),
                el("td", "state state-" + state, state), el("td", "", level), el("td", "state state-" + gate, gate),
                el("td", "", money(i.cost) + " " + (currency || "")));
      return tr;
    });
    $("inputs").replaceChildren(...rows);
    $("inputs-table").hidden = !rows.length;
  }

  // What the bill is made of: audio captured, what of it was speech (the least that must be billed), and what each
  // session was sent (what it bills), with how sentences end.
  function renderBilled(gate) {
    if (!gate) {
      $("billed").replaceChildren(el("dt", "", "Audio"), el("dd", "dim", "not reported"));
      return;
    }
    const sec = (s) => (s || 0).toFixed(1) + " s";
    const rows = [
      el("dt", "", "Captured"), el("dd", "", sec(gate.captured_s)),
      el("dt", "", "Speech"), el("dd", "", sec(gate.speech_s)),
      el("dt", "", "Sentence ends"), el("dd", "", gate.turns === "client" ? "by the gate (commit)"
        : "by the service (" + gate.turns + ", " + gate.trail_ms + " ms after speech)")];
    for (const [target, s] of Object.entries(gate.sessions || {})) {
      const ratio = s.sent_per_speech === null ? "" : " (" + s.sent_per_speech.toFixed(2) + "× the speech)";
      rows.push(el("dt", "", "Sent to " + target), el("dd", "", sec(s.sent_s) + ratio));
    }
    $("billed").replaceChildren(...rows);
  }

  function renderCost(cost, demo) {
    const out = $("cost");
    if (!cost) {
      const why = demo ? "nothing is billed in demo mode" : "not reported";
      out.replaceChildren(el("dt", "", "Cost"), el("dd", "dim", why));
      return;
    }
    const cur = " " + (cost.currency || "");
    const budget = (spent, limit) => money(spent) + cur + (limit ? " of " + money(limit) + cur : "");
    out.replaceChildren(
      el("dt", "", "Total so far"), el("dd", "", money(cost.total_spent) + cur),
      el("dt", "", "This stream"), el("dd", "", budget(cost.stream_spent, cost.per_stream)),
      el("dt", "", "Today"), el("dd", "", budget(cost.day_spent, cost.per_day)));
    $("budget-reached").hidden = !cost.reached;
    $("budget-reached-text").textContent =
      cost.reached ? "The " + cost.reached + " budget is reached: audio is held." : "";
  }

  function renderLatency(lat) {
    const rows = [];
    const add = (label, h) => {
      rows.push(el("dt", "", label));
      // Quantiles are estimated from histogram buckets (hence ≈); the mean is exact.
      const text = "median ≈ " + ms(h && h.p50_s) + ", 95% ≈ " + ms(h && h.p95_s) + ", mean " + ms(h && h.avg_s);
      rows.push(el("dd", "", h && h.count ? text + " (" + h.count + ")" : "no samples yet"));
    };
    add("Final → on screen", lat && lat.final_to_screen);
    add("Capture → sent", lat && lat.capture_to_wire);
    $("latency").replaceChildren(...rows);
  }

  // -- YouTube captions and webhooks (/status post_outputs); hidden when there are none

  function renderPosts(posts) {
    const items = Object.entries(posts || {}).map(([name, p]) => {
      const li = el("li");
      li.dataset.post = name;
      const counts = "posted " + p.posted + ", retried " + p.retried + ", failed " + p.failed + ", skipped "
        + p.skipped + ", waiting " + p.queued + (p.last_answer ? "; last answer " + p.last_answer.status : "");
      const state = el("span", "state state-" + (p.ok ? "connected" : "reconnecting"), p.ok ? "ok" : "failing");
      const trouble = el("span", "err", p.warning || p.last_error || "");
      li.append(el("span", "", name), state, el("span", "dim", counts), trouble);
      return li;
    });
    $("posts").replaceChildren(...items);
    $("posts-card").hidden = !items.length;
  }

  // -- captions: an event stream per language (no final is missed), /status as the fallback

  function lang(code) {
    let l = langs.get(code);
    if (l) return l;
    const box = el("section", "lang");
    box.dataset.lang = code;
    const list = el("ol");
    list.setAttribute("aria-live", "polite");
    list.setAttribute("aria-label", "recent captions, " + code);
    const partial = el("p", "partial");
    box.append(el("h3", "", code), list, partial);
    $("captions").append(box);
    l = {code, list, partial, mode: "poll", es: null, seen: null};
    langs.set(code, l);
    if (langs.size <= MAX_STREAMS) stream(l);
    return l;
  }
  function final(text, speaker, cls) {
    // Who said it (the speaker's name, also when speakers.label hides labels from viewers) before the text.
    const li = el("li", cls || "");
    if (speaker) { li.dataset.speaker = speaker; li.append(el("b", "speaker", speaker), " "); }
    li.append(text);
    return li;
  }
  function addFinal(l, text, missed, speaker) {
    // Appended, never rebuilt: a screen reader announces the new line only, not the whole list again.
    l.list.append(final(text, speaker, missed ? "missed" : ""));
    while (l.list.children.length > RECENT) l.list.firstElementChild.remove();
  }
  const nameOf = (c) => (c && c.speaker ? c.speaker.name : "");
  function stream(l) {
    const es = l.es = new EventSource("overlay/events?lang=" + encodeURIComponent(l.code) + "&partials=1");
    es.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      l.mode = "sse";
      if (ev.kind === "replay") {
        l.list.replaceChildren(...ev.captions.slice(-RECENT).map((c) => final(c.text, nameOf(c))));
        l.partial.textContent = ev.partial ? ev.partial.text : "";
      } else if (ev.kind === "final") {
        l.partial.textContent = "";
        if (ev.text) addFinal(l, ev.text, false, nameOf(ev));
      } else if (ev.kind === "partial") {
        l.partial.textContent = ev.text;
      } else if (ev.kind === "clear") {
        l.list.replaceChildren(); l.partial.textContent = "";
      }
    };
    es.onerror = () => {
      // A network error is retried by EventSource itself; an HTTP error (no overlay here) closes it for good.
      if (es.readyState !== EventSource.CLOSED) return;
      es.close();
      l.mode = "poll"; l.es = null;
      setTimeout(() => { if (!l.es) stream(l); }, 10 * POLL_MS);
    };
  }
  function pollCaptions(outputs) {
    for (const [code, o] of Object.entries(outputs || {})) {
      const l = lang(code);
      const count = o.final_count || 0;
      if (l.mode === "poll") {
        if (l.seen === null) {
          if (o.last_final && !l.list.children.length) addFinal(l, o.last_final, false, o.last_speaker);
        } else if (count > l.seen && o.last_final) {
          // Finals that came and went between two polls cannot be fetched any more: say so instead of hiding it.
          if (count - l.seen > 1) addFinal(l, "… " + (count - l.seen - 1) + " more not shown", true);
          addFinal(l, o.last_final, false, o.last_speaker);
        }
        // /status keeps the last partial after its final came: only the stream knows what is being spoken now.
        l.partial.textContent = "";
      }
      l.seen = count;
    }
  }

  // -- control state

  function renderControl(st) {
    const c = st.control;
    // Rebuilt only on a change: rebuilding under an open language menu every second would snap it shut.
    const key = JSON.stringify([c, st.languages_available]);
    if (key === controlKey) return;
    controlKey = key;
    const available = st.languages_available || [];
    const running = c ? (c.paused ? "paused" : "running") : "unknown";
    $("run-state").textContent = running;
    $("run-state").className = "state state-" + running;
    $("pause").disabled = running === "paused";
    $("resume").disabled = running === "running";
    const speaks = c && c.source_languages ? Object.entries(c.source_languages) : [];
    $("source-languages").replaceChildren(...speaks.map(([name, lang]) => inputRow(name, lang, available)));
    const outputs = c && c.outputs ? Object.entries(c.outputs) : [];
    $("outputs").replaceChildren(...outputs.map(([name, o]) => outputRow(name, o, available)));
    $("no-outputs").hidden = outputs.length > 0;
  }
  // What each input's speaker speaks: a switch reconnects only that input's sessions, at its next pause.
  function inputRow(name, lang, available) {
    const tr = el("tr");
    tr.dataset.sourceInput = name;
    const pick = el("select");
    pick.setAttribute("aria-label", "language spoken on " + (name || "the input"));
    for (const code of new Set([lang || "auto", ...available])) {
      const opt = el("option", "", code);
      opt.value = code;
      opt.selected = code === (lang || "auto");
      pick.append(opt);
    }
    pick.addEventListener("change", () => act("source_language", name ? {input: name, language: pick.value}
                                                                           : {language: pick.value}));
    const cell = el("td");
    cell.append(pick);
    tr.append(el("td", "", name || "audio"), cell);
    return tr;
  }
  function outputRow(name, o, available) {
    const tr = el("tr");
    tr.dataset.output = name;
    const pick = el("select");
    pick.setAttribute("aria-label", "language of " + name);
    for (const code of new Set([o.language, ...available])) {
      const opt = el("option", "", code);
      opt.value = code;
      opt.selected = code === o.language;
      pick.append(opt);
    }
    pick.addEventListener("change", () => act("language", {output: name, language: pick.value}));
    const vis = el("button", "", o.visible ? "Hide" : "Show");
    vis.type = "button";
    vis.setAttribute("aria-label", (o.visible ? "Hide " : "Show ") + name);
    vis.addEventListener("click", () => act(o.visible ? "hide" : "show", {output: name}));
    const clear = el("button", "", "Clear");
    clear.type = "button";
    clear.setAttribute("aria-label", "Clear " + name);
    clear.addEventListener("click", () => act("clear", {output: name}));
    const cells = [el("td", "", name), el("td"), el("td", "", o.visible ? "shown" : "hidden"), el("td")];
    cells[1].append(pick);
    cells[3].append(vis, " ", clear);
    tr.append(...cells);
    return tr;
  }

  // -- polling

  function render(st) {
    $("version").textContent = "v" + st.version;
    $("demo").hidden = st.demo !== true;
    $("reload-error").hidden = !st.reload_error;
    $("reload-error").textContent = st.reload_error ? "Config reload refused: " + st.reload_error : "";
    renderLinks(st.links);
    renderLevel(st.audio_level, st.audio_gate, (st.links || {}).audio);
    renderBilled(st.audio_gate);
    renderCost(st.cost, st.demo);
    renderInputs(st.inputs, st.cost && st.cost.currency);
    renderLatency(st.latency);
    renderPosts(st.post_outputs);
    pollCaptions(st.outputs);
    renderControl(st);
  }
  async function poll() {
    try {
      const r = await fetch("status", {cache: "no-store"});
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
      $("conn").textContent = "live";
      $("conn").className = "state state-connected";
    } catch (e) {
      $("conn").textContent = "daemon unreachable";
      $("conn").className = "state state-unreachable";
    }
    root.dataset.polls = String(Number(root.dataset.polls || 0) + 1);
  }
  async function loop() {
    await poll();
    setTimeout(loop, POLL_MS);
  }

  // -- control requests

  function say(text, ok) {
    $("control-msg").textContent = text;
    $("control-msg").className = ok ? "ok" : "bad";
  }
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function showToken() {
    const has = token() !== "";
    $("token-state").textContent = has ? "token set for this tab" : "no token set";
    $("forget").hidden = !has;
  }
  async function act(action, body) {
    if (!token()) { say("Enter the control token first (http.token in the daemon's config).", false); return; }
    if (busy) return;
    busy = true;
    const init = {method: "POST", headers: {"Authorization": "Bearer " + token()}, cache: "no-store"};
    if (body) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let r = null, answer = {};
    try {
      r = await fetch("control/" + action, init);
      answer = await r.json().catch(() => ({}));
    } catch (e) {
      say("Could not reach the daemon: " + action + " may not have happened.", false);
    }
    busy = false;
    if (r === null) return;
    if (r.ok) {
      say("Done: " + action + ".", true);
    } else if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showToken();
      say("Wrong control token (401): the daemon refused it. Enter the token from http.token again.", false);
    } else if (r.status === 403) {
      say("Control is switched off on this daemon (403): set http.token in its config.", false);
    } else if (r.status === 404) {
      say("This daemon does not offer \u201c" + action + "\u201d (404).", false);
    } else {
      say("Refused (" + r.status + "): " + (answer.error || "no reason given"), false);
    }
    await poll();  // show the state the action left behind at once, not a second later
  }

  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    showToken();
    say(value ? "Token kept for this browser tab only." : "Empty token ignored.", value !== "");
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showToken();
    say("Token forgotten.", true);
  });
  $("pause").addEventListener("click", () => act("pause"));
  $("resume").addEventListener("click", () => act("resume"));
  $("clear-all").addEventListener("click", () => act("clear"));
  $("budget-resume").addEventListener("click", () => act("budget/resume"));
  showToken();
  loop();
})();
