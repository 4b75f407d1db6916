// API browser over the OpenAPI document this server serves. Builds the page
// with DOM calls and textContent only, so nothing in the document or in an
// answer is interpreted as HTML.
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete"];
let doc = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function refName(ref) { return ref.slice(ref.lastIndexOf("/") + 1); }

function resolve(obj) {
  if (obj && obj.$ref) {
    const parts = obj.$ref.replace(/^#\//, "").split("/");
    return parts.reduce((o, p) => o[p], doc);
  }
  return obj;
}

// typeText describes a schema in one line.
function typeText(s) {
  if (!s) return "any";
  if (s.$ref) return refName(s.$ref);
  if (s.anyOf) return s.anyOf.map(typeText).join(" or ");
  if (s.allOf) return s.allOf.map(typeText).join(" and ");
  const types = Array.isArray(s.type) ? s.type : [s.type || "any"];
  return types.map(t => {
    if (t === "array") return "array of " + typeText(s.items);
    if (t === "object" && s.additionalProperties && typeof s.additionalProperties === "object") return "object of " + typeText(s.additionalProperties);
    if (t === "string" && s.format) return "string (" + s.format + ")";
    return t;
  }).join(" or ") + (s.enum ? ": " + s.enum.join(", ") : "");
}

// schemaTable shows a component's fields, expanding nested components on click.
function schemaTable(schema, seen) {
  const s = resolve(schema);
  if (!s || !s.properties) return el("p", {}, el("code", {}, typeText(schema)));
  const tbody = el("tbody");
  for (const name of Object.keys(s.properties).sort()) {
    const f = s.properties[name];
    const refs = [];
    const collect = x => { if (!x) return; if (x.$ref) refs.push(x.$ref); (x.anyOf || []).forEach(collect); collect(x.items); if (typeof x.additionalProperties === "object") collect(x.additionalProperties); };
    collect(f);
    const typeCell = el("td", {}, el("code", {}, typeText(f)));
    for (const r of refs) {
      if (seen.has(r)) continue;
      const holder = el("div");
      typeCell.append(" ", el("a", { href: "#", onclick: ev => { ev.preventDefault(); holder.replaceChildren(holder.firstChild ? "" : schemaTable({ $ref: r }, new Set([...seen, r]))); } }, "▸ " + refName(r)), holder);
    }
    tbody.append(el("tr", {}, el("td", {}, el("code", {}, name)), typeCell, el("td", {}, (s.required || []).includes(name) ? "yes" : ""), el("td", {}, f.description || "")));
  }
  return el("div", {}, s.description ? el("p", { class: "muted" }, s.description) : null,
    el("table", {}, el("thead", {}, el("tr", {}, ...["field", "type", "required", "description"].map(h => el("th", {}, h)))), tbody));
}

function operations() {
  const out = [];
  for (const path of Object.keys(doc.paths).sort()) {
    for (const m of METHODS) {
      const op = doc.paths[path][m];
      if (op) out.push({ method: m.toUpperCase(), path, op });
    }
  }
  return out;
}

function show(o, li) {
  document.querySelectorAll("nav li.op.active").forEach(x => x.classList.remove("active"));
  li.classList.add("active");
  location.hash = o.op.operationId;
  const op = o.op;
  const main = document.getElementById("main");
  main.replaceChildren(
    el("h2", {}, el("span", { class: "method " + o.method }, o.method), el("code", {}, o.path)),
    el("p", {}, op.summary + (op.description ? ". " + op.description : "")),
    el("p", { class: "muted" }, "Permission: " + op["x-permission"]));
  const params = op.parameters || [];
  if (params.length) {
    const tbody = el("tbody");
    for (const p of params) tbody.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, el("code", {}, typeText(p.schema))), el("td", {}, p.required ? "yes" : ""), el("td", {}, p.description || "")));
    main.append(el("h3", {}, "Parameters"), el("table", {}, el("thead", {}, el("tr", {}, ...["name", "in", "type", "required", "description"].map(h => el("th", {}, h)))), tbody));
  }
  if (op.requestBody) {
    const schema = op.requestBody.content["application/json"].schema;
    main.append(el("h3", {}, "Request body: " + typeText(schema)), schemaTable(schema, new Set([schema.$ref])));
  }
  const rt = el("tbody");
  for (const status of Object.keys(op.responses).sort()) {
    const r = op.responses[status];
    const rr = resolve(r);
    let body = Object.entries(rr.content || {}).map(([ct, mt]) => typeText(mt.schema) + " (" + ct + ")").join(", ");
    let desc = rr.description || "";
    if (r.$ref) {
      const codes = rr.content["application/json"].schema.allOf[1].properties.error.properties.code.enum;
      body = "ErrorEnvelope";
      desc += ": " + codes.join(", ");
    }
    rt.append(el("tr", {}, el("td", {}, status), el("td", {}, el("code", {}, body)), el("td", {}, desc)));
  }
  main.append(el("h3", {}, "Responses"), el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "body"), el("th", {}, "description"))), rt));
  if (op["x-example"]) main.append(el("h3", {}, "Example"), el("pre", {}, op["x-example"]));
  main.append(tryIt(o));
}

// tryIt is a form that sends the request from the browser.
function tryIt(o) {
  const op = o.op;
  const inputs = {};
  const form = el("div", { class: "try" }, el("h3", {}, "Try it"));
  for (const p of op.parameters || []) {
    inputs[p.in + ":" + p.name] = el("input", { type: "text", placeholder: typeText(p.schema) });
    form.append(el("div", {}, el("label", {}, p.name + " (" + p.in + (p.required ? ", required" : "") + ") ", inputs[p.in + ":" + p.name])));
  }
  let body = null;
  if (op.requestBody) {
    body = el("textarea", { spellcheck: "false" });
    const m = /-d '([\s\S]*)'$/.exec(op["x-example"] || "");
    body.value = m ? JSON.stringify(JSON.parse(m[1]), null, 2) : "{}";
    form.append(el("div", {}, "Body (JSON)"), body);
  }
  const out = el("pre", { class: "result" });
  form.append(el("button", { onclick: async () => {
    let path = o.path;
    const q = new URLSearchParams();
    const headers = {};
    for (const p of op.parameters || []) {
      const v = inputs[p.in + ":" + p.name].value;
      if (v === "") continue;
      if (p.in === "path") path = path.replace("{" + p.name + "}", encodeURIComponent(v));
      else if (p.in === "query") q.append(p.name, v);
      else if (p.in === "header") headers[p.name] = v;
    }
    const key = document.getElementById("apikey").value;
    if (key) headers["Authorization"] = "Bearer " + key;
    const init = { method: o.method, headers };
    if (body) { init.body = body.value; headers["Content-Type"] = "application/json"; }
    const url = path + (q.toString() ? "?" + q : "");
    try {
      const resp = await fetch(url, init);
      const text = await resp.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
      out.className = "result " + (resp.ok ? "ok" : "err");
      out.textContent = o.method + " " + url + "\n" + resp.status + " " + resp.statusText + "\n\n" + shown;
    } catch (e) {
      out.className = "result err";
      out.textContent = "request failed: " + e;
    }
  } }, "Send"), out);
  return form;
}

function render() {
  document.getElementById("title").textContent = doc.info.title + " (" + doc.info.version + ")";
  const list = document.getElementById("ops");
  const ops = operations();
  const items = [];
  for (const tag of doc.tags) {
    list.append(el("li", { class: "tag" }, tag.name));
    for (const o of ops.filter(x => (x.op.tags || []).includes(tag.name))) {
      const li = el("li", { class: "op", "data-text": (o.method + " " + o.path + " " + o.op.summary).toLowerCase() },
        el("span", { class: "method " + o.method }, o.method), o.path);
      li.addEventListener("click", () => show(o, li));
      list.append(li);
      items.push([o, li]);
    }
  }
  document.getElementById("filter").addEventListener("input", ev => {
    const f = ev.target.value.toLowerCase();
    for (const [, li] of items) li.hidden = !li.dataset.text.includes(f);
  });
  const main = document.getElementById("main");
  main.replaceChildren(el("h2", {}, doc.info.title), ...doc.info.description.split("\n\n").map(p => el("p", {}, p)),
    el("p", { class: "muted", id: "status" }, ops.length + " operations. Pick one on the left."));
  const want = location.hash.slice(1);
  const hit = items.find(([o]) => o.op.operationId === want);
  if (hit) show(hit[0], hit[1]);
}

async function load() {
  try {
    const resp = await fetch("/api-docs/openapi.json");
    if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
    doc = await resp.json();
    render();
  } catch (e) {
    document.getElementById("status").textContent = "Could not load /api-docs/openapi.json: " + e;
  }
}

document.addEventListener("DOMContentLoaded", load);
