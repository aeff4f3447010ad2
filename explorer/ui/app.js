// Agora explorer: a small single-page app over /explorer/api. No framework,
// no network access beyond this node; every page is a hash route so the
// browser's back button and links work.
"use strict";

const API = "/explorer/api";
const main = document.getElementById("main");
const statusEl = document.getElementById("status");
const refreshBtn = document.getElementById("refresh");
let autoRefresh = true;
let timer = null;
let renderSeq = 0;

// ---------- helpers ----------

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function num(n) { return Number(n || 0).toLocaleString("en-US"); }
// compact renders an axis label in a few characters: 950, 12.3k, 10M.
function compact(n) {
  n = Number(n || 0);
  for (const [d, s] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (Math.abs(n) >= d) return (n / d).toLocaleString("en-US", { maximumFractionDigits: 1 }) + s;
  }
  return n.toLocaleString("en-US", { maximumFractionDigits: 2 });
}
function amount(u) {
  u = Number(u || 0);
  if (u >= 1e6) return (u / 1e6).toLocaleString("en-US", { maximumFractionDigits: 6 }) + " AGR";
  return num(u) + " uagr";
}
function short(h, n = 10) { h = String(h || ""); return h.length > 2 * n ? h.slice(0, n) + "…" + h.slice(-4) : h; }
function when(t) {
  if (!t) return "—";
  const d = new Date(t);
  const ago = Math.round((Date.now() - d.getTime()) / 1000);
  const rel = ago < 0 ? "" : ago < 60 ? ` (${ago}s ago)` : ago < 3600 ? ` (${Math.round(ago / 60)} min ago)` : "";
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") + rel;
}
const link = {
  block: h => `<a href="#/block/${esc(h)}">${num(h)}</a>`,
  tx: h => `<a class="mono" href="#/tx/${esc(h)}">${esc(short(h))}</a>`,
  acct: a => a ? `<a class="mono" href="#/account/${esc(a)}">${esc(short(a, 8))}</a>` : "—",
  prov: a => `<a class="mono" href="#/provider/${esc(a)}">${esc(short(a, 8))}</a>`,
  epoch: n => `<a href="#/epoch/${esc(n)}">${num(n)}</a>`,
  chan: id => `<a href="#/channel/${esc(id)}">#${esc(id)}</a>`,
  job: id => `<a href="#/job/${esc(id)}">#${esc(id)}</a>`,
  deal: id => `<a href="#/storage/deal/${esc(id)}">#${esc(id)}</a>`,
  dispute: id => `<a href="#/job-dispute/${esc(id)}">#${esc(id)}</a>`,
  dataset: id => `<a href="#/dataset/${esc(id)}">#${esc(id)}</a>`,
  grant: id => `<a href="#/data-grant/${esc(id)}">#${esc(id)}</a>`,
  model: h => `<a href="#/model/${esc(h)}" class="mono">${esc(short(h, 12))}</a>`,
  zk: id => `<a href="#/zk/${esc(id)}">#${esc(id)}</a>`,
};
function yes(b, t = "yes", f = "no") { return b ? `<span class="ok">${t}</span>` : `<span class="bad">${f}</span>`; }

async function get(path) {
  const r = await fetch(API + path, { headers: { Accept: "application/json" } });
  let body;
  try { body = await r.json(); } catch (e) { throw new Error(`${path}: ${r.status} ${r.statusText}`); }
  if (!r.ok) {
    const err = new Error(body?.error?.message || `${r.status} ${r.statusText}`);
    err.status = r.status;
    throw err;
  }
  return body;
}

function table(cols, rows, empty) {
  if (!rows.length) return `<p class="empty">${empty}</p>`;
  const head = cols.map(c => `<th scope="col"${c.n ? ' class="n"' : ""}>${esc(c.h)}</th>`).join("");
  const body = rows.map(r => "<tr>" + cols.map(c => `<td${c.n ? ' class="n"' : ""}>${c.f(r)}</td>`).join("") + "</tr>").join("");
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}
function kv(pairs) {
  return `<dl class="kv">${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
}
function card(k, v, s = "") {
  return `<div class="card"><div class="k">${esc(k)}</div><div class="v">${v}</div>${s ? `<div class="s">${s}</div>` : ""}</div>`;
}

// barChart draws a labelled SVG bar chart of points [{x, y}].
function barChart(title, points, fmt = num, axis = compact) {
  const W = 460, H = 170, L = 56, B = 22, T = 8;
  if (!points.length) {
    return `<figure><figcaption>${esc(title)}</figcaption><p class="s">No data yet.</p></figure>`;
  }
  const max = Math.max(1, ...points.map(p => p.y));
  const bw = (W - L - 4) / points.length;
  const bars = points.map((p, i) => {
    const h = Math.round((p.y / max) * (H - B - T));
    const x = L + i * bw;
    return `<rect class="b" x="${x + 1}" y="${H - B - h}" width="${Math.max(1, bw - 2)}" height="${h}"><title>${esc(p.x)}: ${esc(fmt(p.y))}</title></rect>`;
  }).join("");
  const every = Math.ceil(points.length / 8);
  const labels = points.map((p, i) => i % every ? "" :
    `<text x="${L + i * bw + bw / 2}" y="${H - 6}" text-anchor="middle">${esc(p.x)}</text>`).join("");
  const axisLabels = `<text x="${L - 6}" y="${T + 8}" text-anchor="end">${esc(axis(max))}</text><text x="${L - 6}" y="${H - B}" text-anchor="end">0</text>` +
    `<line x1="${L}" y1="${H - B}" x2="${W}" y2="${H - B}" stroke="#aab"/>`;
  const desc = points.map(p => `${p.x}: ${fmt(p.y)}`).join(", ");
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title + ". " + desc)}">${axisLabels}${bars}${labels}</svg></figure>`;
}

// ---------- views ----------

async function viewOverview() {
  const o = await get("/overview");
  const t = o.totals;
  const noTraffic = t.requests === 0 && t.channels === 0;
  const eps = o.epochs;
  let html = `<h1>Overview <small class="s">· chain ${esc(o.chain_id)}</small></h1>
  <div class="cards">
    ${card("Height", link.block(o.height), when(o.latest_block_time))}
    ${card("Block time", o.avg_block_seconds ? o.avg_block_seconds.toFixed(2) + " s" : "—", "average of the last 60 blocks")}
    ${card("Epoch", link.epoch(o.current_epoch), `${num(o.epoch_length)} blocks per epoch`)}
    ${card("Validators", num(o.validators), amount(o.validator_bonded) + " bonded")}
    ${card("Providers", `<span id="providers-online">${num(o.active_providers)}</span> online`, `${num(o.providers)} registered`)}
    ${card("Requests served", `<span id="requests-served">${num(t.requests)}</span>`, "committed on chain by providers")}
    ${card("Tokens served", `<span id="tokens-served">${num(t.tokens)}</span>`, "prompt + completion, as committed")}
    ${card("Billed to clients", amount(t.billed), amount(t.paid) + " redeemed by providers")}
    ${card("Fees", amount(t.fees), amount(o.fee_pool) + " in the fee pool")}
    ${card("Emission", amount(t.emitted), `${amount(t.rewards)} paid as rewards`)}
    ${card("Supply", amount(o.supply))}
    ${card("Faults", num(t.faults), amount(t.slashed) + " slashed")}
  </div>`;
  if (noTraffic) {
    html += `<section class="empty" aria-labelledby="empty-h"><h2 id="empty-h">No requests served yet</h2>
      <p>This network has not served any inference request. With <code>agora up</code> running, send one through the gateway:</p>
      <pre><code>curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\
  -d '{"model":"agora-demo","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'</code></pre>
      <p>Providers commit their receipts when an epoch ends (every ${num(o.epoch_length)} blocks); the request then appears here.</p></section>`;
  }
  html += `<div class="charts">
    ${barChart("Requests per epoch", eps.map(e => ({ x: "epoch " + e.epoch, y: e.requests })))}
    ${barChart("Tokens per epoch", eps.map(e => ({ x: "epoch " + e.epoch, y: e.tokens })))}
    ${barChart("Billed per epoch (uagr)", eps.map(e => ({ x: "epoch " + e.epoch, y: e.billed })))}
    ${barChart("Fees per epoch (uagr)", eps.map(e => ({ x: "epoch " + e.epoch, y: e.fees })))}
    ${barChart("Rewards per epoch (uagr)", eps.filter(e => e.settled).map(e => ({ x: "epoch " + e.epoch, y: e.provider_rewards + e.validator_rewards })))}
    ${barChart("Seconds between blocks", o.block_times.map(b => ({ x: "#" + b.height, y: b.seconds })), v => Number(v).toFixed(2) + " s", v => Number(v).toFixed(2) + " s")}
  </div>`;
  html += `<h2>Latest blocks</h2>` + blocksTable(o.recent_blocks);
  if (o.keep_blocks > 0) html += `<p class="empty">This node keeps the blocks and transactions of the last ${num(o.keep_blocks)} blocks (from #${num(o.oldest_block)}); the sums and charts above cover the whole chain.</p>`;
  html += `<h2>Latest verdicts</h2>` + verdictTable(o.recent_verdicts, "No fault has been reported: no provider or validator has been slashed.");
  return html;
}

function blocksTable(blocks) {
  return table([
    { h: "Height", f: b => link.block(b.height) },
    { h: "Time", f: b => esc(when(b.time)) },
    { h: "Epoch", f: b => link.epoch(b.epoch) },
    { h: "Txs", n: 1, f: b => num(b.txs) + (b.failed ? ` <span class="bad">(${b.failed} failed)</span>` : "") },
    { h: "Fees", n: 1, f: b => amount(b.fees) },
    { h: "Proposer", f: b => `<span class="mono">${esc(short(b.proposer, 8))}</span>` },
  ], blocks, "No blocks yet.");
}

function txTable(txs) {
  return table([
    { h: "Hash", f: t => link.tx(t.hash) },
    { h: "Height", f: t => link.block(t.height) },
    { h: "Message", f: t => esc(t.msg) },
    { h: "Signer", f: t => link.acct(t.signer) },
    { h: "Result", f: t => t.code === 0 ? '<span class="ok">ok</span>' : `<span class="bad">failed (code ${t.code})</span>` },
    { h: "Fee", n: 1, f: t => amount(t.fee) },
  ], txs, "No transactions.");
}

function verdictTable(vs, empty) {
  return table([
    { h: "Height", f: v => link.block(v.height) },
    { h: "Kind", f: v => esc(v.kind.replace(/_/g, " ")) },
    { h: "Concerning", f: v => v.provider ? link.prov(v.target) : link.acct(v.target) },
    { h: "Epoch / receipt", f: v => v.zk_model ? `zk model ${link.zk(v.zk_model)}` : v.provider ? `${link.epoch(v.epoch)} / #${num(v.index)}` : "—" },
    { h: "Status", f: v => v.applied ? '<span class="bad">slashed</span>' : `<span class="warn">awaiting confirmation (${num(v.votes)} vote)</span>` },
    { h: "Slashed", n: 1, f: v => amount(v.slashed) },
    { h: "Refunded to clients", n: 1, f: v => amount(v.refund) },
    { h: "Reporter reward", n: 1, f: v => amount(v.reward) },
    { h: "Tx", f: v => v.tx ? link.tx(v.tx) : "—" },
  ], vs, empty);
}

function providerTable(rows) {
  return table([
    { h: "Provider", f: p => link.prov(p.address) },
    { h: "Models", f: p => esc(p.models.map(m => m.name).join(", ")) || "—" },
    { h: "Price in / out per 1K tokens", n: 1, f: p => `${num(p.price_input_per_1k)} / ${num(p.price_output_per_1k)} uagr` },
    { h: "Stake", n: 1, f: p => amount(p.bonded) },
    { h: "Status", f: p => status(p) },
    { h: "Requests served", n: 1, f: p => `<span class="served">${num(p.stats.requests)}</span>` },
    { h: "Earned (vouchers)", n: 1, f: p => amount(p.stats.earned) },
    { h: "Rewards", n: 1, f: p => amount(p.stats.rewards) },
    { h: "Faults", n: 1, f: p => p.faults ? `<span class="bad">${num(p.faults)}</span>` : "0" },
    { h: "Reputation", f: p => reputation(p) },
  ], rows, "No provider has registered on this chain yet. Start one with <code>agora provider start</code>.");
}

function status(p) {
  if (p.jailed) return '<span class="bad">jailed</span>';
  if (!p.registered) return "deregistered";
  return p.online ? '<span class="ok">online</span>' : '<span class="warn">unreachable</span>';
}

function reputation(p) {
  const pct = `${(p.reputation_bps / 100).toFixed(0)} %`;
  if (p.faults) return `<span class="${p.reputation_bps ? "warn" : "bad"}">${pct}</span> (${num(p.faults)} fault${p.faults === 1 ? "" : "s"})`;
  return `<span class="${p.reputation_bps >= 10000 ? "ok" : ""}">${pct}</span>`;
}

async function viewProviders() {
  const rows = await get("/providers");
  return `<h1>Providers</h1><p>Everyone serving models on this chain, with what the chain recorded of their work: requests committed in epoch roots, vouchers redeemed, faults proven.</p>` + providerTable(rows);
}

async function viewProvider(addr) {
  const d = await get("/provider/" + encodeURIComponent(addr));
  const p = d.provider, s = p.stats;
  let html = `<h1>Provider <span class="mono">${esc(p.address)}</span></h1>`;
  html += kv([
    ["Status", status(p)],
    ["Endpoint", `<code>${esc(p.endpoint)}</code>`],
    ["Models", p.models.map(m => `${esc(m.name)} <span class="mono s">${esc(short(m.hash, 8))}</span> (context ${num(m.context_length)})`).join("<br>") || "—"],
    ["Prices", `${num(p.price_input_per_1k)} uagr per 1K prompt tokens, ${num(p.price_output_per_1k)} per 1K completion tokens`],
    ["Hardware", esc([p.hardware.cpu, p.hardware.gpu].filter(Boolean).join(", ") || "—")],
    ["Stake", amount(p.bonded)],
    ["Requests served", `<span id="provider-requests">${num(s.requests)}</span> in ${num(s.commitments)} committed epoch${s.commitments === 1 ? "" : "s"} (${num(s.tokens)} tokens)`],
    ["Billed / earned", `${amount(s.billed)} billed · ${amount(s.earned)} redeemed · ${amount(s.rewards)} in rewards`],
    ["Faults", p.faults ? `<span class="bad">${num(p.faults)}</span> · ${amount(s.slashed)} slashed · ${amount(s.refunded)} refunded to clients` : "none"],
    ["Reputation", reputation(p) + " — sets its audit rate; grows with each clean epoch, resets on a fault"],
    ["Registered at", link.block(p.registered_height)],
    ["Account", link.acct(p.address)],
  ]);
  html += `<h2>Epoch commitments</h2>` + table([
    { h: "Epoch", f: c => link.epoch(c.epoch) },
    { h: "Receipts", n: 1, f: c => num(c.requests) },
    { h: "Tokens", n: 1, f: c => num(c.tokens) },
    { h: "Billed", n: 1, f: c => amount(c.billed) },
    { h: "Merkle root", f: c => `<span class="mono">${esc(short(c.root, 12))}</span>` },
    { h: "Committed at", f: c => link.block(c.height) },
    { h: "Tx", f: c => link.tx(c.tx) },
  ], d.commitments, "This provider has not committed an epoch yet.");
  html += `<h2>Verdicts</h2>` + verdictTable(d.verdicts, "No fault has been proven against this provider.");
  html += `<h2>Payment channels</h2>` + channelTable(d.channels);
  return html;
}

function channelTable(cs) {
  return table([
    { h: "Channel", f: c => link.chan(c.id) },
    { h: "Client", f: c => link.acct(c.client) },
    { h: "Provider", f: c => link.prov(c.provider) },
    { h: "Deposit", n: 1, f: c => amount(c.deposit) },
    { h: "Redeemed", n: 1, f: c => amount(c.redeemed) },
    { h: "Remaining", n: 1, f: c => amount(c.remaining) },
    { h: "Expires at", f: c => link.block(c.expiry_height) },
    { h: "State", f: c => c.closed ? "closed" : '<span class="ok">open</span>' },
  ], cs, "No payment channel yet.");
}

async function viewBlocks(q) {
  const before = q.get("before");
  const blocks = await get("/blocks?limit=25" + (before ? "&before=" + encodeURIComponent(before) : ""));
  let html = `<h1>Blocks</h1>` + blocksTable(blocks);
  const last = blocks[blocks.length - 1];
  html += `<div class="pager">${before ? `<a href="#/blocks">Latest</a>` : ""}${last && last.height > 1 ? `<a href="#/blocks?before=${last.height}">Older blocks</a>` : ""}</div>`;
  return html;
}

async function viewBlock(h) {
  const d = await get("/block/" + encodeURIComponent(h));
  const b = d.block;
  let html = `<h1>Block ${num(b.height)}</h1>`;
  html += kv([
    ["Hash", `<span class="mono">${esc(b.hash)}</span>`],
    ["Time", esc(when(b.time))],
    ["Epoch", link.epoch(b.epoch)],
    ["Proposer", `<span class="mono">${esc(b.proposer)}</span>`],
    ["Transactions", `${num(b.txs)}${b.failed ? ` (${num(b.failed)} failed)` : ""}`],
    ["Fees", amount(b.fees)],
    ["Events", (b.events || []).map(e => esc(e.type + " " + Object.entries(e.attrs).map(([k, v]) => `${k}=${v}`).join(" "))).join("<br>") || "—"],
  ]);
  html += `<div class="pager">${b.height > 1 ? `<a href="#/block/${b.height - 1}">← Block ${num(b.height - 1)}</a>` : ""}<a href="#/block/${b.height + 1}">Block ${num(b.height + 1)} →</a></div>`;
  html += `<h2>Transactions</h2>` + txTable(d.txs);
  return html;
}

async function viewTx(hash) {
  const t = await get("/tx/" + encodeURIComponent(hash));
  const fields = Object.entries(t.fields || {}).map(([k, v]) => [k.replace(/_/g, " "), fieldValue(k, v)]);
  const results = Object.entries(t.results || {}).map(([k, v]) => [k.replace(/_/g, " "), fieldValue(k, v)]);
  return `<h1>Transaction</h1>` + kv([
    ["Hash", `<span class="mono">${esc(t.hash)}</span>`],
    ["Block", `${link.block(t.height)} (position ${num(t.index)})`],
    ["Time", esc(when(t.time))],
    ["Message", esc(t.msg)],
    ["Signer", link.acct(t.signer)],
    ["Nonce", num(t.nonce)],
    ["Fee charged", amount(t.fee)],
    ["Result", t.code === 0 ? '<span class="ok">ok</span>' : `<span class="bad">failed, code ${t.code}</span>: ${esc(t.log)}`],
  ]) + zkTxSummary(t) + (fields.length ? `<h2>Message fields</h2>` + kv(fields) : "") + (results.length ? `<h2>Results</h2>` + kv(results) : "");
}

function fieldValue(k, v) {
  if (/^(to|provider|signer|client)$/.test(k) && /^[0-9a-f]{40}$/.test(v)) return k === "provider" ? link.prov(v) : link.acct(v);
  if (k === "channel_id") return link.chan(v);
  if (k === "order_id") return link.job(v);
  if (k === "dispute_id") return link.dispute(v);
  if (k === "dataset_id") return link.dataset(v);
  if (k === "grant_id") return link.grant(v);
  if ((k === "model_id" || k === "zk_model_id") && /^\d+$/.test(v)) return link.zk(v);
  if (k === "price" && /^\d+$/.test(v)) return amount(v);
  if (k === "host" && /^[0-9a-f]{40}$/.test(v)) return link.prov(v);
  if (k === "epoch") return link.epoch(v);
  if (/amount|deposit|paid|refund|reward|slashed|billed|cumulative/.test(k) && /^\d+$/.test(v)) return amount(v);
  return `<span class="mono">${esc(v)}</span>`;
}

async function viewAccount(addr) {
  const d = await get("/account/" + encodeURIComponent(addr));
  const a = d.account;
  const roles = [d.provider ? `<a href="#/provider/${esc(a.address)}">provider</a>` : "", d.validator ? "validator" : ""].filter(Boolean).join(", ");
  return `<h1>Account <span class="mono">${esc(a.address)}</span></h1>` + kv([
    ["Balance", amount(a.balance)],
    ["Nonce", num(a.nonce)],
    ["Public key", a.pub_key ? `<span class="mono">${esc(a.pub_key)}</span>` : "not revealed yet (no tx signed)"],
    ["Roles", roles || "—"],
  ]) + `<h2>Transactions</h2>` + txTable(d.txs);
}

async function viewEpochs() {
  const eps = await get("/epochs?limit=100");
  return `<h1>Epochs</h1><p>Requests and billed amounts come from the providers' commitments for the epoch (made in the blocks after it ends).</p>` + table([
    { h: "Epoch", f: e => link.epoch(e.epoch) },
    { h: "Blocks", n: 1, f: e => num(e.blocks) },
    { h: "Commitments", n: 1, f: e => num(e.commitments) },
    { h: "Requests", n: 1, f: e => num(e.requests) },
    { h: "Tokens", n: 1, f: e => num(e.tokens) },
    { h: "Billed", n: 1, f: e => amount(e.billed) },
    { h: "Redeemed", n: 1, f: e => amount(e.paid) },
    { h: "Fees", n: 1, f: e => amount(e.fees) },
    { h: "Faults", n: 1, f: e => e.faults ? `<span class="bad">${num(e.faults)}</span>` : "0" },
    { h: "Emission", n: 1, f: e => e.settled ? amount(e.emission) : "—" },
    { h: "Rewards", n: 1, f: e => e.settled ? amount(e.provider_rewards + e.validator_rewards) : "—" },
  ], eps, "No epoch yet.");
}

async function viewEpoch(n) {
  const d = await get("/epoch/" + encodeURIComponent(n));
  const s = d.stats, e = d.epoch;
  let html = `<h1>Epoch ${num(s.epoch)}</h1>`;
  html += kv(e ? [
    ["Blocks", `${link.block(e.start_height)} – ${link.block(e.end_height)}`],
    ["Commit deadline", link.block(e.commit_deadline)],
    ["Audit seed", e.seed ? `<span class="mono">${esc(e.seed)}</span> (block ${link.block(e.seed_height)}; ${e.seed_source === "vrf" ? `VRF beacon of ${num(e.seed_contributors)} validator${e.seed_contributors === 1 ? "" : "s"}` : "hash of the seed block"})` : `drawn at block ${num(e.seed_height)}`],
    ["Opening deadline", link.block(e.opening_deadline)],
    ["Settlement", e.settled ? `at block ${link.block(e.settle_height)}: ${amount(e.emission)} minted + ${amount(e.fees)} fees → ${amount(e.provider_rewards)} to providers, ${amount(e.validator_rewards)} to validators` : `at block ${link.block(e.settle_height)}, when fault reports close`],
    ["Requests committed", num(s.requests)],
    ["Tokens", num(s.tokens)],
    ["Billed", amount(s.billed)],
    ["Fees", amount(s.fees)],
  ] : [["State", "in progress: providers commit after it ends"], ["Blocks so far", num(s.blocks)], ["Fees", amount(s.fees)]]);
  html += `<h2>Commitments</h2>` + table([
    { h: "Provider", f: c => link.prov(c.provider) },
    { h: "Receipts", n: 1, f: c => num(c.receipt_count) },
    { h: "Tokens", n: 1, f: c => num(c.total_tokens) },
    { h: "Billed", n: 1, f: c => amount(c.total_billed) },
    { h: "Merkle root", f: c => `<span class="mono">${esc(c.root)}</span>` },
    { h: "At block", f: c => link.block(c.height) },
    { h: "Reputation at commit", n: 1, f: c => `${(c.reputation_bps / 100).toFixed(0)} %` },
    { h: "Receipts sampled for audit", f: c => e && e.seed ? (c.sampled.length ? c.sampled.map(i => "#" + num(i)).join(", ") : "none") : "after the seed is drawn" },
    { h: "Quality (validators' median)", n: 1, f: c => c.settled ? `${(c.quality_bps / 100).toFixed(0)} %` : "—" },
    { h: "Reward", n: 1, f: c => c.settled ? amount(c.reward) : "—" },
  ], d.commitments || [], "No provider committed for this epoch.");
  const scoreRows = (d.scores || []).flatMap(v => v.scores.map(sc => ({ ...sc, validator: v.validator, height: v.height })));
  html += `<h2>Audit scores</h2><p>Each validator's score of a provider: the share of its sampled receipts that re-executed bit for bit. A provider's quality is the stake-weighted median.</p>` + table([
    { h: "Validator", f: r => link.acct(r.validator) },
    { h: "Provider", f: r => link.prov(r.provider) },
    { h: "Score", n: 1, f: r => `<span class="score">${(r.score_bps / 100).toFixed(0)} %</span>` },
    { h: "Sent at", f: r => link.block(r.height) },
  ], scoreRows, "No validator has scored this epoch yet (scores follow the audits, after the seed).");
  html += `<h2>Audit verdicts</h2>` + verdictTable(d.verdicts, "No fault was proven for this epoch.");
  html += `<div class="pager">${s.epoch > 0 ? `<a href="#/epoch/${s.epoch - 1}">← Epoch ${num(s.epoch - 1)}</a>` : ""}<a href="#/epoch/${s.epoch + 1}">Epoch ${num(s.epoch + 1)} →</a></div>`;
  return html;
}

async function viewAudits() {
  const [vs, open] = await Promise.all([get("/verdicts?limit=200"), get("/open")]);
  return `<h1>Audits and slashes</h1><p>Validators re-execute a random sample of each provider's committed receipts. A proven fault slashes the provider's bond, refunds its clients and rewards the reporters; a validator that double-signs is slashed by consensus.</p>` +
    `<h2>Open disputes</h2><p>A client escrowed a bond on a receipt; validators re-execute it until the deadline. A confirmed fault refunds the client and returns the bond; otherwise the bond goes to the provider.</p>` +
    table([
      { h: "Receipt", f: d => `<code title="${esc(d.receipt_id)}">${esc(short(d.receipt_id))}</code>` },
      { h: "Provider", f: d => link.prov(d.provider) },
      { h: "Epoch / index", f: d => `${link.epoch(d.epoch)} / ${num(d.index)}` },
      { h: "Client", f: d => link.acct(d.client) },
      { h: "Bond", f: d => amount(d.bond) },
      { h: "Opened at", f: d => link.block(d.opened_height) },
      { h: "Deadline", f: d => link.block(d.deadline) },
    ], open.disputes, "No dispute is open.") +
    `<h2>Open omission challenges</h2><p>A receipt was reported missing from its provider's commitment; the provider must post its inclusion proof before the deadline or be slashed.</p>` +
    table([
      { h: "Receipt", f: c => `<code title="${esc(c.receipt_id)}">${esc(short(c.receipt_id))}</code>` },
      { h: "Provider", f: c => link.prov(c.provider) },
      { h: "Epoch / index", f: c => `${link.epoch(c.epoch)} / ${num(c.index)}` },
      { h: "Reporter", f: c => link.acct(c.reporter) },
      { h: "Amount", f: c => amount(c.amount) },
      { h: "Bond", f: c => amount(c.bond) },
      { h: "Deadline", f: c => link.block(c.deadline) },
    ], open.challenges, "No omission challenge is open.") +
    `<h2>Verdicts</h2>` +
    verdictTable(vs, "No fault has been reported: every audit so far found the providers honest, and no validator double-signed.");
}

async function viewChannels() {
  return `<h1>Payment channels</h1>` + channelTable(await get("/channels?limit=200"));
}

async function viewChannel(id) {
  const c = await get("/channel/" + encodeURIComponent(id));
  return `<h1>Channel #${esc(c.id)}</h1>` + kv([
    ["Client", link.acct(c.client)],
    ["Provider", link.prov(c.provider)],
    ["Deposit", amount(c.deposit)],
    ["Redeemed by the provider", amount(c.redeemed)],
    ["Remaining", amount(c.remaining)],
    ["Opened at", link.block(c.opened_height)],
    ["Expires at", link.block(c.expiry_height)],
    ["State", c.closed ? `closed, ${amount(c.refunded)} refunded` : '<span class="ok">open</span>'],
  ]);
}

// ---------- compute jobs (chain/jobs) ----------

function jobStatus(s) {
  const good = ["done", "running", "bidding"], bad = ["slashed", "abandoned", "unmatched"];
  return good.includes(s) ? `<span class="ok">${esc(s)}</span>` : bad.includes(s) ? `<span class="bad">${esc(s)}</span>` : esc(s);
}

function jobTable(os) {
  return table([
    { h: "Order", f: o => link.job(o.id) },
    { h: "Owner", f: o => link.acct(o.owner) },
    { h: "Status", f: o => jobStatus(o.status) + (o.reason ? ` <span class="s">${esc(o.reason)}</span>` : "") },
    { h: "Replicas", n: 1, f: o => num(o.replication) },
    { h: "Gas limit", n: 1, f: o => num(o.gas_limit) },
    { h: "Max price /Mgas", n: 1, f: o => amount(o.max_price) },
    { h: "Bids", n: 1, f: o => num(o.bids) },
    { h: "Deadline", f: o => link.block(o.deadline) },
  ], os, "No compute job has been submitted yet.");
}

async function viewJobs(q) {
  const st = q.get("status") || "";
  const tabs = ["", "bidding", "running", "done", "unmatched", "cancelled", "ended"]
    .map(s => s === st ? `<b>${esc(s || "all")}</b>` : `<a href="#/jobs${s ? "?status=" + s : ""}">${esc(s || "all")}</a>`).join(" · ");
  return `<h1>Compute jobs</h1><p>${tabs}</p>` + jobTable(await get("/jobs?limit=200" + (st ? "&status=" + encodeURIComponent(st) : "")));
}

function disputeTable(ds) {
  return table([
    { h: "Dispute", f: d => link.dispute(d.id) },
    { h: "Checkpoint", n: 1, f: d => num(d.index) },
    { h: "Challenger", f: d => link.acct(d.challenger) },
    { h: "Phase", f: d => esc(d.phase) },
    { h: "Steps", f: d => `${num(d.lo)}–${num(d.hi)}` },
    { h: "Outcome", f: d => d.outcome ? esc(d.outcome) : `due by ${link.block(d.deadline)}` },
  ], ds, "No dispute.");
}

async function viewJob(id) {
  const j = await get("/job/" + encodeURIComponent(id));
  const o = j.order;
  let html = `<h1>Compute job #${esc(o.id)}</h1>` + kv([
    ["Status", jobStatus(o.status) + (o.reason ? ` — ${esc(o.reason)}` : "")],
    ["Owner", link.acct(o.owner)],
    ["Module", `<span class="mono">${esc(o.module_hash)}</span>`],
    ["Inputs", o.input_hashes.length ? o.input_hashes.map(h => `<span class="mono">${esc(short(h, 12))}</span>`).join(", ") : "none"],
    ["Gas limit", num(o.gas_limit) + ` (memory ${num(o.memory_pages)} pages)`],
    ["Max price", amount(o.max_price) + " per million gas"],
    ["Replicas", num(o.replication) + (o.mismatch_index ? ` — <span class="bad">replicas disagree from checkpoint ${num(o.mismatch_index)}</span>` : "")],
    ["Collateral required", amount(o.collateral)],
    ["Submitted", link.block(o.submitted_height) + `, bids until ${link.block(o.bid_window_end)}, deadline ${link.block(o.deadline)}`],
    ["Checkpoint every", num(o.checkpoint_interval) + " steps"],
  ].concat(o.dataset_id ? [
    ["Dataset", link.dataset(o.dataset_id) + ` — compute-to-data, output cap ${num(o.output_cap)} bytes, sealed to <span class="mono">${esc(short(o.buyer_key, 12))}</span>`],
    ["Run price", amount(o.run_price) + (o.run_paid ? ' <span class="ok">paid to the owner</span>' : o.run_held ? " (held until the run succeeds)" : " (refunded)")],
  ] : []));
  if (o.status === "bidding") {
    html += `<h2>Bids</h2>` + table([
      { h: "Provider", f: b => link.prov(b.provider) },
      { h: "Price /Mgas", n: 1, f: b => amount(b.price) },
      { h: "Collateral", n: 1, f: b => amount(b.collateral) },
      { h: "At", f: b => link.block(b.height) },
    ], j.bids, "No bid yet.");
  }
  for (const l of j.leases || []) {
    html += `<h2>Lease #${esc(l.id)}: ${jobStatus(l.status)}</h2>` + kv([
      ["Provider", link.prov(l.provider)],
      ["Price", amount(l.price) + " per million gas"],
      ["Paid / budget", `${amount(l.paid)} of ${amount(l.budget)}` + (l.refunded ? `, ${amount(l.refunded)} refunded` : "")],
      ["Progress", `${num(l.checkpoints)} checkpoints, ${num(l.steps)} steps, ${num(l.gas_used)} gas`],
      ["Collateral", amount(l.collateral) + (l.forfeited ? ` — <span class="bad">forfeited</span>` : l.collateral_released ? " (released)" : l.release_height ? ` (locked until ${num(l.release_height)})` : " (locked)")],
      ["Result", l.result_hash ? `<span class="mono">${esc(l.result_hash)}</span>` : "—"],
    ]) + table([
      { h: "#", n: 1, f: c => num(c.index) },
      { h: "Steps", n: 1, f: c => num(c.steps) },
      { h: "Gas", n: 1, f: c => num(c.gas_used) },
      { h: "State", f: c => `<span class="mono">${esc(short(c.state_hash, 12))}</span>` + (c.done ? ' <span class="ok">done</span>' : "") },
      { h: "Paid", n: 1, f: c => amount(c.paid) },
      { h: "Block", f: c => link.block(c.height) },
    ], l.checkpoint_list || [], "No checkpoint yet.") + (l.disputes && l.disputes.length ? `<h3>Disputes</h3>` + disputeTable(l.disputes) : "") +
      (l.models && l.models.length ? `<h3>Models registered from this lease</h3>` + modelTable(l.models) : "") +
      // A training job's loss curve (out/loss.json, fetched from the provider and checked against the
      // chain by the explorer); other jobs have none and the figure removes itself.
      (l.result_hash && !o.dataset_id ? `<figure class="loss" id="loss-${esc(l.id)}"><img src="/explorer/api/lease/${esc(l.id)}/loss.svg" alt="training loss of lease ${esc(l.id)}" width="640" height="380" onerror="this.parentNode.remove()"></figure>` : "");
  }
  return html;
}

async function viewJobDispute(id) {
  const d = await get("/job-dispute/" + encodeURIComponent(id));
  return `<h1>Dispute #${esc(d.id)}</h1>` + kv([
    ["Checkpoint", `${num(d.index)} of lease ${num(d.lease_id)}`],
    ["Challenger", link.acct(d.challenger)],
    ["Defender", link.prov(d.defender)],
    ["Bond", amount(d.bond)],
    ["Interval", `steps ${num(d.lo)} (agreed) – ${num(d.hi)} (disputed), after ${num(d.moves)} moves`],
    ["Phase", esc(d.phase) + (d.outcome ? "" : `, due by ${link.block(d.deadline)}`)],
    ["Outcome", d.outcome ? `${esc(d.outcome)}: ${esc(d.reason)}` : "—"],
    ["Slashed / refunded / rewarded", `${amount(d.slashed)} / ${amount(d.refund)} / ${amount(d.reward)}`],
  ]);
}

// ---------- trained-model registry (chain/models) ----------

function modelTable(ms) {
  return table([
    { h: "Model (sha256)", f: m => link.model(m.hash) },
    { h: "Name", f: m => esc(m.name || "—") },
    { h: "Size", n: 1, f: m => num(m.size) },
    { h: "Trained by", f: m => link.prov(m.trainer) },
    { h: "Job", f: m => link.job(m.order_id) + ` lease ${esc(m.lease_id)} ` + jobStatus(m.lease_status) },
    { h: "Module", f: m => `<span class="mono">${esc(short(m.module_hash, 12))}</span>` },
    { h: "Steps", n: 1, f: m => num(m.steps) },
    { h: "Data", f: m => m.dataset_id ? link.dataset(m.dataset_id) : `${num(m.input_hashes.length)} input(s)` },
    { h: "Registered", f: m => link.block(m.height) },
  ], ms, "No trained model has been registered yet.");
}

async function viewModels() {
  return `<h1>Trained models</h1><p>Models a compute job produced, registered by the job's owner: the chain checked the file's sha256 (computed by the job itself) against the lease's committed results. One record per lease: the same bytes registered by several leases (a trainer's, a copier's) have several, each naming its module. Check a file with <code>agora model provenance FILE</code>.</p>` +
    modelTable(await get("/models?limit=200"));
}

// viewModel shows every record of a sha256: the registry keys records by
// (sha256, lease), so the same bytes registered from several leases (the
// trainer's, a copier's) each keep their own provenance.
async function viewModel(h) {
  const r = await get("/model/" + encodeURIComponent(h));
  const recs = r.records;
  const names = [...new Set(recs.map(m => m.name).filter(n => n))];
  return `<h1>Model <span class="mono">${esc(short(recs[0].hash, 16))}</span>${names.length ? " — " + esc(names.join(", ")) : ""}</h1>` + kv([
    ["sha256", `<span class="mono">${esc(recs[0].hash)}</span>`],
    ["Records", recs.length === 1 ? "1 (one lease registered these bytes)" : `${num(recs.length)}, by lease (the oldest first)`],
  ]) + (recs.length > 1 ? `<p class="bad">The same bytes were registered by ${recs.length} leases. The registry does not say which one trained them: ` +
      `each record names the module that wrote the file, and a job that only copies a public file registers it too. Tell the trainer from a copier by its module, inputs and checkpoint chain: ` +
      recs.map(m => `lease ${esc(m.lease_id)}, module <span class="mono">${esc(short(m.module_hash, 16))}</span>`).join("; ") + `.</p>` : "") +
    recs.map((m, i) => `<h2>Record ${i + 1} of ${recs.length}: lease ${esc(m.lease_id)}</h2>` + kv([
      ["Blob ID", `<span class="mono">${esc(m.blob_id)}</span> (${num(m.size)} bytes)`],
      ["Registered", `${m.name ? esc(m.name) + " " : ""}by ${link.acct(m.owner)} at ${link.block(m.height)}`],
      ["Trained by", link.prov(m.trainer) + ` in job ${link.job(m.order_id)}, lease ${esc(m.lease_id)}: ` + jobStatus(m.lease_status) +
        (m.lease_status === "slashed" ? ' <span class="bad">the lease lost a dispute after registration</span>' : "")],
      ["Module", `<span class="mono">${esc(m.module_hash)}</span> ${esc((m.args || []).join(" "))}`],
      ["Training data", m.dataset_id ? link.dataset(m.dataset_id) + ` root <span class="mono">${esc(short(m.dataset_root, 16))}</span>` :
        (m.input_hashes || []).map((h, i) => `${esc((m.input_names || [])[i] || i)} <span class="mono">${esc(short(h, 16))}</span>`).join("<br>") || "none"],
      ["Checkpoint chain", `${num(m.checkpoints)} checkpoints over ${num(m.steps)} steps, final state <span class="mono">${esc(short(m.state_hash, 16))}</span>`],
      ["Result list", `<span class="mono">${esc(m.result_hash)}</span>, output ${esc(m.output)}`],
    ])).join("") + `<h2>Served by</h2>` + table([
    { h: "Provider", f: p => link.prov(p.address) },
    { h: "Endpoint", f: p => esc(p.endpoint) },
    { h: "Faults", n: 1, f: p => num(p.faults) },
  ], r.providers, "No registered provider offers this model.");
}

// ---------- zkML registry (chain/zk) ----------

// hexFull shows a long hex value shortened, the whole of it on hover, with
// a button that copies it.
function hexFull(h, n = 10) {
  return `<span class="mono" title="${esc(h)}">${esc(short(h, n))}</span> <button type="button" class="copy" data-copy="${esc(h)}" aria-label="Copy ${esc(h)}">copy</button>`;
}
// hexCopy shows a hex value in full, with a copy button.
function hexCopy(h) {
  return `<span class="mono">${esc(h)}</span> <button type="button" class="copy" data-copy="${esc(h)}" aria-label="Copy">copy</button>`;
}

function plural(n, word) { return `${num(n)} ${word}${Number(n) === 1 ? "" : "s"}`; }

function zkFaults(m) {
  return m.faults ? `<span class="bad">${num(m.faults)}</span> (${amount(m.slashed)})` : "0";
}

function zkModelTable(ms) {
  return table([
    { h: "Model", f: m => link.zk(m.id) },
    { h: "Name", f: m => esc(m.name) },
    { h: "Owner", f: m => link.acct(m.owner) },
    { h: "Commitment", f: m => hexFull(m.commitment) },
    { h: "Verifying key (sha256)", f: m => hexFull(m.vk_hash) },
    { h: "Batch", n: 1, f: m => num(m.batch) },
    { h: "Inputs → logits", n: 1, f: m => `${num(m.in_len)} → ${num(m.out_len)}` },
    { h: "Price per inference", n: 1, f: m => amount(m.price) },
    { h: "Registered", f: m => link.block(m.height) },
    { h: "Proofs verified", n: 1, f: m => `<span class="zk-proofs">${num(m.proofs)}</span>` },
    { h: "Faults slashed", n: 1, f: m => zkFaults(m) },
  ], ms, "No zk model has been registered yet. Register one with <code>agora zk register</code>.");
}

async function viewZKModels() {
  return `<h1>zk models</h1><p>Models whose inferences are proven in zero knowledge (Groth16 on BN254 over int8 weights). Each is registered by a Poseidon2 commitment to its weights and its circuit's verifying key; the chain verifies a proof inside the transaction that carries it (<code>agora zk submit</code>), and slashes a provider whose signed answer's proof fails.</p>` +
    zkModelTable(await get("/zk/models?limit=200"));
}

async function viewZKModel(id) {
  const r = await get("/zk/model/" + encodeURIComponent(id));
  const m = r.model;
  const file = `zk-model-${m.id}-verifying.key`;
  return `<h1>zk model #${num(m.id)} — ${esc(m.name)}</h1>` + kv([
    ["Commitment", hexCopy(m.commitment) + `<br><span class="s">Poseidon2 of the int8 weights: every proof is of this model and no other.</span>`],
    ["Verifying key", `sha256 ${hexCopy(m.vk_hash)}<br><a href="${esc(r.verifying_key_url)}" download="${esc(file)}" id="vk-download">Download the verifying key</a> (${num(m.vk_size)} bytes), then check a proof offline: <code>agora zk verify --vk ${esc(file)} --proof proof.json</code>`],
    ["Shape", `batches of ${plural(m.batch, "inference")}, ${num(m.in_len)} int8 inputs → ${num(m.out_len)} logits each`],
    ["Price", amount(m.price) + " per proven inference"],
    ["Registered", `by ${link.acct(m.owner)} at block ${link.block(m.height)}` + (m.tx ? ` in ${link.tx(m.tx)}` : "")],
    ["Proofs verified on chain", `<span id="zk-proof-count">${num(m.proofs)}</span>`],
    ["Faults slashed", zkFaults(m)],
  ]) + `<h2>Proofs verified on chain</h2>` + table([
    { h: "Statement (sha256)", f: p => hexFull(p.statement_hash, 12) },
    { h: "Inferences", n: 1, f: p => num(p.inferences) },
    { h: "Submitter", f: p => link.acct(p.submitter) },
    { h: "Block", f: p => link.block(p.height) },
    { h: "Time", f: p => esc(when(p.time)) },
    { h: "Tx", f: p => link.tx(p.tx) },
  ], r.proof_list, "No proof of this model has been verified on chain yet.") + `<h2>Faults slashed</h2>` + table([
    { h: "Provider", f: f => link.prov(f.provider) },
    { h: "Answer (sha256)", f: f => hexFull(f.answer_hash, 12) },
    { h: "Slashed", n: 1, f: f => amount(f.slashed) },
    { h: "Reporter reward", n: 1, f: f => amount(f.reward) },
    { h: "Reporter", f: f => link.acct(f.reporter) },
    { h: "Block", f: f => link.block(f.height) },
    { h: "Tx", f: f => link.tx(f.tx) },
  ], r.fault_list, "No provider has been slashed for an answer of this model.");
}

// zkTxSummary says in a sentence what a zk message did.
function zkTxSummary(t) {
  const f = t.fields || {}, r = t.results || {};
  if (t.code !== 0) return "";
  switch (t.msg) {
    case "register_zk_model":
      return `<p>Registered zk model ${link.zk(r.zk_model_id)} (${esc(f.name)}): batches of ${plural(f.batch, "inference")}, ${num(f.in_len)} inputs → ${num(f.out_len)} logits, ${amount(f.price)} per proven inference.</p>`;
    case "verify_zk_proof":
      return `<p>The chain verified a proof of ${plural(f.inferences, "inference")} of zk model ${link.zk(f.model_id)} in this transaction; statement <span class="mono">${esc(short(r.statement, 12))}</span>.</p>`;
    case "report_zk_fault":
      return `<p>Provider ${link.prov(f.provider)} signed an answer of zk model ${link.zk(f.model_id)} whose proof does not verify: slashed ${amount(r.slashed)}, ${amount(r.reward)} to the reporter.</p>`;
  }
  return "";
}

// ---------- data market (chain/data) ----------

function datasetTable(ds) {
  return table([
    { h: "Dataset", f: d => link.dataset(d.id) },
    { h: "Name", f: d => esc(d.name) + (d.retired ? ' <span class="bad">retired</span>' : "") },
    { h: "Owner", f: d => link.acct(d.owner) },
    { h: "Host", f: d => link.prov(d.host) },
    { h: "Size", n: 1, f: d => num(d.size) },
    { h: "Run price", n: 1, f: d => amount(d.run_price) },
    { h: "Download", n: 1, f: d => d.download ? amount(d.download_price) : "—" },
    { h: "Grants", n: 1, f: d => num(d.grants) },
    { h: "Paid runs", n: 1, f: d => num(d.runs) },
    { h: "Earned", n: 1, f: d => amount(d.earned) },
  ], ds, "No dataset has been published yet.");
}

function runTable(os) {
  return table([
    { h: "Run (order)", f: o => link.job(o.id) },
    { h: "Dataset", f: o => link.dataset(o.dataset_id) },
    { h: "Buyer", f: o => link.acct(o.owner) },
    { h: "Module", f: o => `<span class="mono">${esc(short(o.module_hash, 12))}</span>` },
    { h: "Status", f: o => jobStatus(o.status) + (o.reason ? ` <span class="s">${esc(o.reason)}</span>` : "") },
    { h: "Run price", n: 1, f: o => amount(o.run_price) + (o.run_paid ? ' <span class="ok">paid</span>' : o.run_held ? " held" : " refunded") },
    { h: "Submitted", f: o => link.block(o.submitted_height) },
  ], os, "No compute-to-data run yet.");
}

function grantTable(gs) {
  return table([
    { h: "Grant", f: g => link.grant(g.id) },
    { h: "Dataset", f: g => link.dataset(g.dataset_id) },
    { h: "Buyer", f: g => link.acct(g.buyer) },
    { h: "Price", n: 1, f: g => amount(g.price) },
    { h: "Block", f: g => link.block(g.height) },
  ], gs, "No download grant sold.");
}

async function viewDatasets() {
  return `<h1>Datasets</h1><p><b>datasets</b> · <a href="#/runs">compute-to-data runs</a></p>` + datasetTable(await get("/datasets?limit=200"));
}

async function viewRuns() {
  return `<h1>Compute-to-data runs</h1><p><a href="#/datasets">datasets</a> · <b>runs</b></p>` + runTable(await get("/runs?limit=200"));
}

async function viewDataset(id) {
  const x = await get("/dataset/" + encodeURIComponent(id));
  const d = x.dataset;
  return `<h1>Dataset #${esc(d.id)}: ${esc(d.name)}</h1>` + kv([
    ["Status", d.retired ? '<span class="bad">retired</span>' : '<span class="ok">active</span>'],
    ["Owner", link.acct(d.owner)],
    ["Host", link.prov(d.host)],
    ["Root", `<span class="mono">${esc(d.root)}</span> (${num(d.size)} bytes)`],
    ["Description", esc(d.description || "—")],
    ["Licence", esc(d.licence || "—")],
    ["Run price", amount(d.run_price) + `, output cap ${num(d.output_cap)} bytes`],
    ["Download", d.download ? amount(d.download_price) + " per grant" : "not sold"],
    ["Modules", d.allowed_modules.length ? d.allowed_modules.map(m => `<span class="mono">${esc(m)}</span>`).join("<br>") : "any (aggregate output only)"],
    ["Buyers", d.buyers.length ? d.buyers.map(link.acct).join(", ") : "anyone"],
    ["Auditors", d.auditors.length ? d.auditors.map(link.acct).join(", ") : "none"],
    ["Published", link.block(d.published_height) + (d.updated_height !== d.published_height ? `, updated ${link.block(d.updated_height)}` : "")],
    ["Sold", `${num(d.grants)} grants, ${num(d.runs)} paid runs: ${amount(d.earned)} earned`],
  ]) + `<h2>Grants</h2>` + grantTable(x.grants) + `<h2>Runs</h2>` + runTable(x.runs);
}

async function viewDataGrant(id) {
  const g = await get("/data-grant/" + encodeURIComponent(id));
  return `<h1>Download grant #${esc(g.id)}</h1>` + kv([
    ["Dataset", link.dataset(g.dataset_id)],
    ["Buyer", link.acct(g.buyer)],
    ["Price", amount(g.price)],
    ["Bought", link.block(g.height)],
  ]);
}

// ---------- storage deals (chain/storage) ----------

function dealStatus(s) {
  return ["active", "done"].includes(s) ? `<span class="ok">${esc(s)}</span>` : esc(s);
}

function score(bps) {
  const pct = (Number(bps) / 100).toFixed(0) + " %";
  return Number(bps) < 10000 ? `<span class="bad">${pct}</span>` : pct;
}

function faultTable(fs) {
  return table([
    { h: "Fault", n: 1, f: x => num(x.id) },
    { h: "Deal", f: x => link.deal(x.deal_id) },
    { h: "Provider", f: x => link.prov(x.provider) },
    { h: "Epoch", n: 1, f: x => num(x.epoch) },
    { h: "At", f: x => link.block(x.height) },
    { h: "In a row", n: 1, f: x => num(x.consecutive) },
    { h: "Slashed", n: 1, f: x => amount(x.slashed) },
    { h: "Refunded", n: 1, f: x => amount(x.refunded) },
    { h: "Score", n: 1, f: x => score(x.score) },
    { h: "Outcome", f: x => x.dropped ? `<span class="bad">dropped, ${amount(x.forfeited)} forfeited</span>` : "slashed" },
  ], fs, "No storage fault: every challenged epoch was proved.");
}

async function viewStorage(q) {
  const st = q.get("status") || "";
  const tabs = ["", "open", "active", "done", "cancelled"]
    .map(s => s === st ? `<b>${esc(s || "all")}</b>` : `<a href="#/storage${s ? "?status=" + s : ""}">${esc(s || "all")}</a>`).join(" · ");
  const ds = await get("/storage/deals?limit=200" + (st ? "&status=" + encodeURIComponent(st) : ""));
  return `<h1>Storage deals</h1><p>${tabs} · <a href="#/storage-faults">faults</a></p>` + table([
    { h: "Deal", f: d => link.deal(d.id) },
    { h: "Client", f: d => link.acct(d.client) },
    { h: "Provider", f: d => d.provider ? link.prov(d.provider) : "—" },
    { h: "Status", f: d => dealStatus(d.status) + (d.reopened ? ` <span class="s">reopened ${num(d.reopened)}×</span>` : "") },
    { h: "Size", n: 1, f: d => num(d.size) + " B" },
    { h: "Epochs", n: 1, f: d => `${num(d.epochs_done)}/${num(d.epochs)}` },
    { h: "Proved", n: 1, f: d => num(d.proved) },
    { h: "Missed", n: 1, f: d => d.missed ? `<span class="bad">${num(d.missed)}</span>` : "0" },
    { h: "Price /epoch", n: 1, f: d => amount(d.price_per_epoch) },
    { h: "Score", n: 1, f: d => score(d.score) },
  ], ds, "No storage deal has been made yet.");
}

async function viewStorageFaults() {
  return `<h1>Storage faults</h1><p><a href="#/storage">deals</a></p>` + faultTable(await get("/storage/faults?limit=200"));
}

async function viewStorageDeal(id) {
  const x = await get("/storage/deal/" + encodeURIComponent(id));
  const d = x.deal;
  let html = `<h1>Storage deal #${esc(d.id)}</h1>` + kv([
    ["Status", dealStatus(d.status) + (d.reopened ? ` — reopened ${num(d.reopened)}×` : "")],
    ["Client", link.acct(d.client)],
    ["Provider", d.provider ? link.prov(d.provider) : "— (open)"],
    ["Blob", `<span class="mono">${esc(d.blob_id)}</span>, ${num(d.size)} bytes`],
    ["Replica root", d.replica_root ? `<span class="mono">${esc(d.replica_root)}</span>` : "—"],
    ["Challenges", num(d.challenges) + " segments per epoch"],
    ["Epochs", `${num(d.epochs_done)} of ${num(d.epochs)}: ${num(d.proved)} proved, ${num(d.missed)} missed` + (d.next_epoch ? `; next ${num(d.next_epoch)}` : "")],
    ["Score", score(d.score)],
    ["Price", amount(d.price_per_epoch) + " per proved epoch"],
    ["Escrow / collateral", `${amount(d.escrow)} / ${amount(d.locked)} of ${amount(d.collateral)}`],
    ["Paid / fees / refunded / slashed", `${amount(d.paid)} / ${amount(d.fees)} / ${amount(d.refunded)} / ${amount(d.slashed)}`],
    ["Dropped providers", (d.dropped || []).length ? d.dropped.map(a => link.prov(a)).join(", ") : "none"],
  ]);
  html += `<h2>Faults</h2>` + faultTable(x.faults || []);
  html += `<h2>Epochs</h2>` + table([
    { h: "Epoch", n: 1, f: e => num(e.epoch) },
    { h: "Provider", f: e => link.prov(e.provider) },
    { h: "Outcome", f: e => e.proved ? '<span class="ok">proved</span>' : '<span class="bad">missed</span>' },
    { h: "At", f: e => link.block(e.height) },
    { h: "Paid", n: 1, f: e => amount(e.paid) },
    { h: "Fee", n: 1, f: e => amount(e.fee) },
    { h: "Slashed", n: 1, f: e => amount(e.slashed) },
  ], (x.epochs || []).slice().reverse(), "No epoch challenged yet.");
  return html;
}

async function viewValidators() {
  const vs = await get("/validators");
  return `<h1>Validators</h1>` + table([
    { h: "Operator", f: v => link.acct(v.operator) },
    { h: "Consensus address", f: v => `<span class="mono">${esc(v.cons_address)}</span>` },
    { h: "Bonded", n: 1, f: v => amount(v.bonded) },
    { h: "Voting power", n: 1, f: v => num(v.power) },
    { h: "Status", f: v => v.jailed ? '<span class="bad">jailed</span>' : '<span class="ok">active</span>' },
    { h: "Faults", n: 1, f: v => num(v.faults) },
  ], vs, "No validator.");
}

function viewReceipt(q) {
  const pre = q.get("id") || "";
  return `<h1>Check a receipt</h1>
  <p>Every answer from the network carries a receipt signed by the provider: its id is the <code>X-Agora-Receipt-Id</code> response header, and the gateway's <code>/v1/receipts/{id}</code> holds the receipt itself (its <code>receipt</code> field).
  Paste the id, the receipt or that JSON to check the provider's signature and its inclusion under the Merkle root the provider committed on chain.</p>
  <form id="check-form">
    <label for="receipt-input">Receipt, receipt JSON or receipt id</label>
    <textarea id="receipt-input" name="receipt" spellcheck="false" required>${esc(pre)}</textarea>
    <p><button class="primary" type="submit">Check receipt</button></p>
  </form>
  <div id="check-result" class="result" aria-live="polite"></div>`;
}

async function checkReceipt(text) {
  const out = document.getElementById("check-result");
  out.innerHTML = "<p>Checking…</p>";
  const r = await fetch(API + "/receipt/check", { method: "POST", headers: { "Content-Type": "text/plain" }, body: text });
  let body;
  try { body = await r.json(); } catch (e) { body = { error: { message: `${r.status} ${r.statusText}` } }; }
  if (!r.ok) {
    out.innerHTML = `<div class="err" role="alert"><strong>This is not a receipt we can check.</strong> ${esc(body.error?.message)}</div>`;
    return;
  }
  const c = body;
  const step = (ok, text) => `<li>${ok ? '<span class="ok">✔</span>' : '<span class="bad">✘</span>'} ${text}</li>`;
  out.innerHTML = `<h2 id="verdict">${c.verified ? '<span class="ok">Verified</span>' : '<span class="bad">Not verified</span>'}</h2>
    ${c.problem ? `<div class="err" role="alert">${esc(c.problem)}</div>` : ""}
    <ul class="steps">
      ${step(c.signature_ok, `Signed by provider ${link.prov(c.provider)}`)}
      ${step(c.committed, c.committed ? `Epoch ${link.epoch(c.epoch)} committed at block ${link.block(c.committed_height)} with root <span class="mono">${esc(c.committed_root)}</span>` : `Epoch ${link.epoch(c.epoch)} committed on chain`)}
      ${step(c.included, c.included ? `Included as receipt ${num(c.index)} of ${num(c.receipts_in_epoch)} under that root` : "Included under the committed root")}
    </ul>` + kv([
    ["Receipt id", `<span class="mono">${esc(c.id)}</span>`],
    ["Client", link.acct(c.client)],
    ["Channel", link.chan(c.channel_id)],
    ["Model", `<span class="mono">${esc(c.model_hash)}</span>`],
    ["Tokens", `${num(c.prompt_tokens)} prompt + ${num(c.completion_tokens)} completion`],
    ["Billed", amount(c.amount)],
  ]);
}

function viewNotFound(path) {
  return `<h1>Page not found</h1><p>There is no explorer page at <code>#${esc(path)}</code>.</p><p><a href="#/">Go to the overview</a></p>`;
}

// ---------- routing ----------

const routes = [
  [/^\/?$/, () => viewOverview(), "overview"],
  [/^\/providers$/, () => viewProviders(), "providers"],
  [/^\/provider\/([0-9a-fA-F]+)$/, m => viewProvider(m[1]), "providers"],
  [/^\/blocks$/, (m, q) => viewBlocks(q), "blocks"],
  [/^\/block\/(\d+)$/, m => viewBlock(m[1]), "blocks"],
  [/^\/tx\/([0-9a-fA-F]+)$/, m => viewTx(m[1]), "blocks"],
  [/^\/account\/([0-9a-fA-F]+)$/, m => viewAccount(m[1]), ""],
  [/^\/epochs$/, () => viewEpochs(), "epochs"],
  [/^\/epoch\/(\d+)$/, m => viewEpoch(m[1]), "epochs"],
  [/^\/audits$/, () => viewAudits(), "audits"],
  [/^\/channels$/, () => viewChannels(), "channels"],
  [/^\/channel\/(\d+)$/, m => viewChannel(m[1]), "channels"],
  [/^\/jobs$/, (m, q) => viewJobs(q), "jobs"],
  [/^\/job\/(\d+)$/, m => viewJob(m[1]), "jobs"],
  [/^\/job-dispute\/(\d+)$/, m => viewJobDispute(m[1]), "jobs"],
  [/^\/models$/, () => viewModels(), "models"],
  [/^\/model\/([0-9a-fA-F]{64})$/, m => viewModel(m[1]), "models"],
  [/^\/zk$/, () => viewZKModels(), "zk"],
  [/^\/zk\/(\d+)$/, m => viewZKModel(m[1]), "zk"],
  [/^\/datasets$/, () => viewDatasets(), "data"],
  [/^\/runs$/, () => viewRuns(), "data"],
  [/^\/dataset\/(\d+)$/, m => viewDataset(m[1]), "data"],
  [/^\/data-grant\/(\d+)$/, m => viewDataGrant(m[1]), "data"],
  [/^\/storage$/, (m, q) => viewStorage(q), "storage"],
  [/^\/storage\/deal\/(\d+)$/, m => viewStorageDeal(m[1]), "storage"],
  [/^\/storage-faults$/, () => viewStorageFaults(), "storage"],
  [/^\/validators$/, () => viewValidators(), "validators"],
  [/^\/receipt$/, (m, q) => viewReceipt(q), "receipt"],
];

function current() {
  const raw = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const [path, qs] = raw.split("?");
  return { path, q: new URLSearchParams(qs || "") };
}

async function render(navigated) {
  const seq = ++renderSeq;
  const { path, q } = current();
  let html, section = "";
  const route = routes.find(([re]) => re.test(path));
  try {
    if (!route) {
      html = viewNotFound(path);
    } else {
      section = route[2];
      html = await route[1](path.match(route[0]), q);
    }
  } catch (e) {
    html = e.status === 404
      ? `<h1>${e.message.startsWith("pruned:") ? "Beyond this node's retention" : "Not found"}</h1><p>${esc(e.message)}</p><p><a href="#/">Go to the overview</a></p>`
      : `<h1>Something went wrong</h1><div class="err" role="alert">${esc(e.message)}</div>`;
  }
  if (seq !== renderSeq) return; // a newer render started
  const y = window.scrollY;
  main.innerHTML = html;
  document.querySelectorAll("nav a").forEach(a => {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  const h1 = main.querySelector("h1");
  document.title = (h1 ? h1.textContent + " · " : "") + "Agora explorer";
  if (navigated) {
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  } else {
    window.scrollTo(0, y);
  }
  statusEl.textContent = "Updated " + new Date().toLocaleTimeString("en-GB");
  const form = document.getElementById("check-form");
  if (form) {
    form.addEventListener("submit", ev => {
      ev.preventDefault();
      checkReceipt(document.getElementById("receipt-input").value);
    });
    if (q.get("id")) checkReceipt(q.get("id"));
  }
}

function schedule() {
  clearInterval(timer);
  timer = setInterval(() => {
    if (!autoRefresh || document.hidden) return;
    const a = document.activeElement;
    if (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA")) return; // do not disturb typing
    if (current().path === "/receipt") return; // a check result stays until the next check
    render(false);
  }, 4000);
}

refreshBtn.addEventListener("click", () => {
  autoRefresh = !autoRefresh;
  refreshBtn.setAttribute("aria-pressed", String(autoRefresh));
  refreshBtn.textContent = "Auto-refresh: " + (autoRefresh ? "on" : "off");
});

document.getElementById("search").addEventListener("submit", ev => {
  ev.preventDefault();
  const v = document.getElementById("q").value.trim();
  if (/^\d+$/.test(v)) location.hash = "#/block/" + v;
  else if (/^[0-9a-fA-F]{40}$/.test(v)) location.hash = "#/account/" + v.toLowerCase();
  else if (/^[0-9a-fA-F]{64}$/.test(v)) {
    // A tx hash or a receipt id: try the tx first.
    fetch(API + "/tx/" + v).then(r => {
      location.hash = r.ok ? "#/tx/" + v.toLowerCase() : "#/receipt?id=" + v.toLowerCase();
    });
  } else if (v) location.hash = "#/receipt?id=" + encodeURIComponent(v);
});

// Copy buttons (hexFull, hexCopy): the clipboard API where the page may use
// it, a selected textarea otherwise (plain http on another host).
main.addEventListener("click", ev => {
  const b = ev.target.closest("button[data-copy]");
  if (!b) return;
  const v = b.dataset.copy;
  const done = () => { b.textContent = "copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(v).then(done, () => {});
    return;
  }
  const ta = document.createElement("textarea");
  ta.value = v;
  document.body.appendChild(ta);
  ta.select();
  try { document.execCommand("copy"); done(); } catch (e) { /* nothing to copy with */ }
  ta.remove();
});

window.addEventListener("hashchange", () => render(true));
render(false);
schedule();
