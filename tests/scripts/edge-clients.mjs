// Edge-client driver for the rln-node light-protocol integration test.
//
// Runs two js-waku light clients (the real `@waku/sdk` 0.0.36, installed by
// `cd tools && npm ci`) against two running rln-node processes:
//   client B: Filter v2 subscriber on NODE2_WS (plain, symmetric and ECIES decoders),
//   client A: LightPush v3 sender on NODE1_WS.
//
// Usage (cwd = repo root; no NODE_PATH needed, packages are loaded from
// tools/node_modules by absolute path, see importFromTools below):
//   NODE1_WS=/ip4/127.0.0.1/tcp/40001/ws/p2p/12D3Koo... \
//   NODE2_WS=/ip4/127.0.0.1/tcp/40002/ws/p2p/12D3Koo... \
//   CONTENT_TOPIC=/rln-test/1/edge/proto PUSH_COUNT=3 EXTRA_PUSHES=5 \
//   SYM_KEY=<64 hex> B_PRIVATE_KEY=<64 hex> RUST_PUBLIC_KEY=<hex, 33 or 65 bytes> \
//   node tests/scripts/edge-clients.mjs
//
// Environment (required unless a default is given):
//   NODE1_WS, NODE2_WS     multiaddrs with /ws (or /wss) and /p2p/<peer id>
//   CONTENT_TOPIC          content topic used by every encoder/decoder
//   CLUSTER_ID=1, SHARD=0  static sharding: pubsub topic /waku/2/rs/<CLUSTER_ID>/<SHARD>
//   PUSH_COUNT=0           plain pushes, payload "edge-<i>"
//   EXTRA_PUSHES=0         further plain pushes, payload "extra-<i>"
//   SYM_KEY                32-byte symmetric key, hex
//   B_PRIVATE_KEY          client B's secp256k1 private key (ECIES decoder), hex
//   RUST_PUBLIC_KEY        secp256k1 public key the "from-js-ecies" push is encrypted to
//   TIMEOUT_MS=120000      overall budget; on expiry: report with "timeout":true, exit 2
//   Optional: EXPECT (same as the {"expect":N} stdin line), PEER_TIMEOUT_MS (wait for
//   a service peer, default min(30000, TIMEOUT_MS/2)), PUSH_TIMEOUT_MS=20000 (per push;
//   the SDK itself never times out waiting for a LightPush answer), PUSH_DELAY_MS=0
//   (pause between pushes), FILTER_KEEPALIVE_MS (filter PING interval, SDK default
//   60000), EDGE_TOOLS_DIR (default <repo>/tools). DEBUG=waku* prints SDK logs to stderr.
//
// MODE=store runs another client instead (client C, started after the traffic): it reads
// the history of CONTENT_TOPIC from NODE2_WS's store with the SDK's queryGenerator,
// PAGE_SIZE entries per page, and reports every page as the wire carried it (event
// "store-report": pages, entries with hash, payload, timestamp, version, and the hash the
// SDK recomputes from the message). Only NODE2_WS, CONTENT_TOPIC, CLUSTER_ID, SHARD,
// PAGE_SIZE and TIMEOUT_MS are read in that mode.
//
// stdout carries JSON lines only (one object per line, field "event"); all logs go to
// stderr. Events: ready, subscribed, pushed, pushes-done, warn, report, error.
// Readers should ignore unknown events/fields. Exit codes: 0 done, 1 error, 2 timeout.
// stdin: the test writes {"expect": N}: finish once pushes are done and B has received
// N messages in total (all decoders together). Without an expect line (or EXPECT) the
// run ends at TIMEOUT_MS.
//
// SDK behaviour this relies on (js-waku 0.0.36):
// - Each decoder is offered every message on the content topic. The plain (version 0)
//   decoder rejects version != 0; the symmetric/ECIES decoders reject version != 1 and
//   undecryptable payloads; a rejected message reaches the callback as `undefined` and
//   is skipped. So each message is recorded once, by the decoder that can read it.
// - Filter pushes are de-duplicated by message hash for 60 s before decoding; the report's
//   raw_pushes lists every push frame the SDK accepted, duplicates included.
// - lightPush.send is called with autoRetry:false, so there is no background re-send.

import { readFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createInterface } from "node:readline";
import { ECDH } from "node:crypto";
import net from "node:net";

// ---------------------------------------------------------------- output discipline
// Keep stdout for our JSON lines: anything the SDK (or a dependency) prints through
// console.log/info/debug goes to stderr instead.
const stdoutWrite = process.stdout.write.bind(process.stdout);
for (const name of ["log", "info", "debug"]) {
  console[name] = (...args) => console.error(...args);
}

const jsonReplacer = (_k, v) => (typeof v === "bigint" ? v.toString() : v);
let outputClosed = false; // set once the final event (report/error) is written
function emit(obj, { final = false } = {}) {
  if (outputClosed) return; // nothing may follow the final event
  if (final) outputClosed = true;
  stdoutWrite(JSON.stringify(obj, jsonReplacer) + "\n");
}
function log(...args) {
  console.error("[edge-clients]", ...args);
}
function errMessage(e) {
  if (e instanceof Error) return e.message || e.name || String(e);
  if (e && typeof e === "object" && "message" in e) return String(e.message);
  return String(e);
}

// ---------------------------------------------------------------- Node 20 polyfill
// libp2p 2.x dependencies (it-queue, abort-error, ...) call Promise.withResolvers,
// which Node 20 lacks. Must be in place before the SDK is imported (dynamic import below).
if (typeof Promise.withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolveFn;
      let rejectFn;
      const promise = new this((res, rej) => {
        resolveFn = res;
        rejectFn = rej;
      });
      return { promise, resolve: resolveFn, reject: rejectFn };
    },
  });
}

// ---------------------------------------------------------------- package loading
const HERE = dirname(fileURLToPath(import.meta.url));
const TOOLS_DIR = process.env.EDGE_TOOLS_DIR
  ? resolve(process.env.EDGE_TOOLS_DIR)
  : resolve(HERE, "../../tools");

// The @waku packages are ESM-only ("exports" has only an "import" condition), so
// createRequire(...).resolve() cannot resolve them. Resolve the entry file from the
// package's own manifest and import it by absolute file URL; the package's own
// imports then resolve from tools/node_modules as usual.
async function importFromTools(pkg, subpath = ".") {
  const pkgDir = join(TOOLS_DIR, "node_modules", ...pkg.split("/"));
  const manifestPath = join(pkgDir, "package.json");
  if (!existsSync(manifestPath)) {
    throw new Error(
      `${pkg} not found under ${join(TOOLS_DIR, "node_modules")}; run \`cd tools && npm ci\``,
    );
  }
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  let target = manifest.exports?.[subpath];
  if (target && typeof target === "object") {
    target = target.import ?? target.node ?? target.default;
  }
  if (target == null && subpath === ".") target = manifest.module ?? manifest.main;
  if (typeof target !== "string") {
    throw new Error(`cannot find the ESM entry of ${pkg} (${subpath})`);
  }
  return import(pathToFileURL(join(pkgDir, target)).href);
}

// ---------------------------------------------------------------- configuration
function envInt(name, dflt, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") {
    if (dflt === undefined) throw new Error(`${name} is required`);
    return dflt;
  }
  if (!/^\d+$/.test(raw.trim())) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  const v = Number(raw.trim());
  if (!Number.isSafeInteger(v) || v < min) throw new Error(`${name} out of range: ${raw}`);
  return v;
}

function envStr(name) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") throw new Error(`${name} is required`);
  return raw.trim();
}

function hexToBytes(name, hex, lengths) {
  const clean = hex.replace(/^0x/i, "");
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
    throw new Error(`${name} is not valid hex`);
  }
  const bytes = new Uint8Array(Buffer.from(clean, "hex"));
  if (lengths && !lengths.includes(bytes.length)) {
    throw new Error(`${name} must be ${lengths.join(" or ")} bytes, got ${bytes.length}`);
  }
  return bytes;
}

// ECIES in @waku/message-encryption only takes 65-byte uncompressed keys (04||x||y).
function uncompressedPublicKey(name, hex) {
  const bytes = hexToBytes(name, hex, [33, 64, 65]);
  if (bytes.length === 64) return Uint8Array.from([4, ...bytes]);
  if (bytes.length === 65) {
    if (bytes[0] !== 4) throw new Error(`${name}: a 65-byte key must start with 04`);
    return bytes;
  }
  if (bytes[0] !== 2 && bytes[0] !== 3) throw new Error(`${name}: a 33-byte key must start with 02 or 03`);
  const out = ECDH.convertKey(Buffer.from(bytes), "secp256k1", undefined, undefined, "uncompressed");
  return new Uint8Array(out);
}

// Minimal shape check so an obviously wrong address fails at once instead of
// after PEER_TIMEOUT_MS (the bootstrap module silently skips unparsable entries).
function checkWsMultiaddr(name, ma) {
  const parts = ma.split("/");
  const p2p = parts.indexOf("p2p");
  const ok =
    ma.startsWith("/") &&
    (parts.includes("ws") || parts.includes("wss")) &&
    parts.includes("tcp") &&
    p2p > 0 &&
    parts[p2p + 1];
  if (!ok) {
    throw new Error(`${name} must look like /ip4/<ip>/tcp/<port>/ws/p2p/<peer id>, got "${ma}"`);
  }
  return { peerId: parts[p2p + 1], host: parts[2], hostProto: parts[1], port: Number(parts[parts.indexOf("tcp") + 1]) };
}

function readConfig() {
  const timeoutMs = envInt("TIMEOUT_MS", 120000, { min: 1 });
  const node1 = envStr("NODE1_WS");
  const node2 = envStr("NODE2_WS");
  const cfg = {
    timeoutMs,
    node1,
    node2,
    node1Info: checkWsMultiaddr("NODE1_WS", node1),
    node2Info: checkWsMultiaddr("NODE2_WS", node2),
    contentTopic: envStr("CONTENT_TOPIC"),
    clusterId: envInt("CLUSTER_ID", 1),
    shard: envInt("SHARD", 0),
    pushCount: envInt("PUSH_COUNT", 0),
    extraPushes: envInt("EXTRA_PUSHES", 0),
    symKey: hexToBytes("SYM_KEY", envStr("SYM_KEY"), [32]),
    bPrivateKey: hexToBytes("B_PRIVATE_KEY", envStr("B_PRIVATE_KEY"), [32]),
    rustPublicKey: uncompressedPublicKey("RUST_PUBLIC_KEY", envStr("RUST_PUBLIC_KEY")),
    peerTimeoutMs: envInt("PEER_TIMEOUT_MS", Math.max(1000, Math.min(30000, Math.floor(timeoutMs / 2))), { min: 1 }),
    pushTimeoutMs: envInt("PUSH_TIMEOUT_MS", 20000, { min: 1 }),
    pushDelayMs: envInt("PUSH_DELAY_MS", 0),
    filterKeepAliveMs: process.env.FILTER_KEEPALIVE_MS ? envInt("FILTER_KEEPALIVE_MS", undefined, { min: 1 }) : undefined,
    expect: process.env.EXPECT ? envInt("EXPECT", undefined) : null,
  };
  return cfg;
}

// ---------------------------------------------------------------- run state
const startedAt = Date.now();
const state = {
  stage: "init",
  finished: false,
  nodes: [], // { name, node }
  received: [],
  rawPushes: [], // every filter push frame handed to the SDK, before its dedup/decoding
  expect: null,
  pushesDone: false,
  filter: { pingsOk: 0, pingsFailed: 0, subscribeRequests: 0, subscribeFailures: 0 },
  lightPushCapture: { request: null, response: null },
};
const elapsed = () => Date.now() - startedAt;

async function stopNodes() {
  const stops = state.nodes.map(async ({ name, node }) => {
    try {
      await node.stop();
    } catch (e) {
      log(`stopping client ${name} failed: ${errMessage(e)}`);
    }
  });
  // Never let a stuck stop keep the process (and the Rust test) waiting.
  await Promise.race([Promise.all(stops), new Promise((r) => setTimeout(r, 5000).unref())]);
}

async function finish(code, event) {
  if (state.finished) return;
  state.finished = true;
  try {
    emit(event, { final: true });
  } catch (e) {
    log("could not write the final event", e);
  }
  await stopNodes();
  process.exit(code);
}

function report(extra) {
  return {
    event: "report",
    received: state.received,
    elapsed_ms: elapsed(),
    expected: state.expect,
    timeout: false,
    stage: state.stage,
    raw_pushes: state.rawPushes,
    filter_health: {
      pings_ok: state.filter.pingsOk,
      pings_failed: state.filter.pingsFailed,
      subscribe_requests: state.filter.subscribeRequests,
      subscribe_failures: state.filter.subscribeFailures,
    },
    ...extra,
  };
}

function checkDone() {
  if (state.finished || !state.pushesDone || state.expect == null) return;
  if (state.received.length >= state.expect) {
    void finish(0, report({}));
  }
}

process.on("unhandledRejection", (reason) => {
  // The SDK fires many promises without awaiting them; one failing must not kill
  // the run with a bare trace. Report it and carry on; the main flow has its own handling.
  log("unhandled rejection:", reason);
  emit({ event: "warn", kind: "unhandled-rejection", message: errMessage(reason) });
});
process.on("uncaughtException", (e) => {
  log("uncaught exception:", e);
  void finish(1, { event: "error", message: errMessage(e), stage: state.stage });
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    log(`got ${sig}, stopping`);
    void finish(1, { event: "error", message: `terminated by ${sig}`, stage: state.stage });
  });
}

// ---------------------------------------------------------------- stdin: {"expect": N}
function readStdin() {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on("line", (line) => {
    const text = line.trim();
    if (!text) return;
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      emit({ event: "warn", kind: "stdin", message: `not JSON: ${text.slice(0, 200)}` });
      return;
    }
    if (msg && Number.isSafeInteger(msg.expect) && msg.expect >= 0) {
      state.expect = msg.expect;
      log(`expecting ${state.expect} messages`);
      checkDone();
    } else {
      emit({ event: "warn", kind: "stdin", message: `ignored line: ${text.slice(0, 200)}` });
    }
  });
  rl.on("close", () => log("stdin closed"));
  process.stdin.on("error", (e) => log("stdin error:", errMessage(e)));
}

// ---------------------------------------------------------------- diagnostics
function tcpProbe(host, port, timeoutMs = 2000) {
  return new Promise((res) => {
    if (!host || !Number.isInteger(port)) return res("not probed");
    const sock = net.connect({ host, port });
    const done = (v) => {
      sock.destroy();
      res(v);
    };
    sock.setTimeout(timeoutMs, () => done("timeout"));
    sock.once("connect", () => done("open"));
    sock.once("error", (e) => done(e.code || errMessage(e)));
  });
}

async function describePeers(sdk, node) {
  const out = [];
  for (const conn of node.libp2p.getConnections()) {
    const entry = {
      peer_id: conn.remotePeer.toString(),
      remote_addr: conn.remoteAddr?.toString(),
      status: conn.status,
      multiplexer: conn.multiplexer,
      encryption: conn.encryption,
      streams: conn.streams.map((s) => `${s.direction}:${s.protocol ?? "?"}`),
    };
    try {
      const peer = await node.libp2p.peerStore.get(conn.remotePeer);
      entry.protocols = peer.protocols;
      const agent = peer.metadata.get("AgentVersion");
      if (agent) entry.agent_version = Buffer.from(agent).toString("utf8");
      const shardInfo = peer.metadata.get("shardInfo");
      entry.shard_info = shardInfo ? sdk.utils.decodeRelayShard(shardInfo) : null;
    } catch (e) {
      entry.peer_store_error = errMessage(e);
    }
    out.push(entry);
  }
  return out;
}

async function diagnose(sdk, node, info) {
  const diag = { connections: [] };
  try {
    diag.connections = await describePeers(sdk, node);
  } catch (e) {
    diag.describe_error = errMessage(e);
  }
  if (info && (info.hostProto === "ip4" || info.hostProto === "ip6" || info.hostProto?.startsWith("dns"))) {
    diag.tcp_probe = await tcpProbe(info.host, info.port);
  }
  return diag;
}

// Waits for a service peer, then checks what the SDK will need in order to use it:
// the protocol in the identify list and a metadata (shard) answer covering our shard.
async function waitForServicePeer(sdk, node, name, protocol, codec, info, cfg) {
  try {
    await node.waitForPeers([protocol], cfg.peerTimeoutMs);
  } catch (e) {
    const diag = await diagnose(sdk, node, info);
    // The SDK's wait listens for the next identify event; when identify finished before the
    // wait began and its own metadata handshake then failed, it waits for an event that has
    // already happened. If the peer is connected, identified with the codec and known to
    // serve our shard, the SDK has what it needs to use it: go on, and say so.
    const ready = (diag.connections || []).find(
      (p) =>
        p.peer_id === info.peerId &&
        p.status === "open" &&
        p.protocols?.includes(codec) &&
        p.shard_info?.clusterId === cfg.clusterId &&
        p.shard_info?.shards?.includes(cfg.shard),
    );
    if (!ready) {
      const err = new Error(`client ${name}: no ${protocol} peer within ${cfg.peerTimeoutMs} ms (${errMessage(e)})`);
      err.diag = diag;
      throw err;
    }
    emit({
      event: "warn",
      client: name,
      kind: "wait",
      message: `the SDK's wait for a ${protocol} peer timed out, but the peer is connected, identified and serves our shard; going on`,
      diag,
    });
  }
  const peers = await describePeers(sdk, node);
  const peer = peers.find((p) => p.peer_id === info.peerId);
  if (!peer) {
    emit({ event: "warn", client: name, kind: "peer", message: `connected peer is not ${info.peerId}`, peers });
    return;
  }
  if (!peer.protocols?.includes(codec)) {
    emit({ event: "warn", client: name, kind: "identify", message: `identify does not list ${codec}`, peer });
  }
  const si = peer.shard_info;
  if (!si) {
    emit({
      event: "warn",
      client: name,
      kind: "metadata",
      message: "no shard info stored for the peer (metadata not answered); the SDK then treats it as serving every topic",
      peer,
    });
  } else if (si.clusterId !== cfg.clusterId || !si.shards.includes(cfg.shard)) {
    emit({
      event: "warn",
      client: name,
      kind: "metadata",
      message: `peer's metadata answer (cluster ${si.clusterId}, shards [${si.shards}]) does not cover /waku/2/rs/${cfg.clusterId}/${cfg.shard}; the SDK will not use this peer`,
      peer,
    });
  }
  log(`client ${name}: service peer ready`, JSON.stringify(peer));
}

// ---------------------------------------------------------------- instrumentation
// LightPush v3 answers: the SDK turns every status_code other than 200 into the single
// error "Remote peer rejected" and only logs the code. To report the code itself, wrap
// the protobuf codec that @waku/core uses (same module instance: @waku/proto is not
// duplicated under tools/node_modules). Pushes are sequential, so "last seen" is exact.
function instrumentLightPushCodec(wakuProto) {
  const lp = wakuProto.proto_lightpush;
  const nested = join(TOOLS_DIR, "node_modules", "@waku", "core", "node_modules", "@waku", "proto");
  if (existsSync(nested)) {
    emit({ event: "warn", kind: "instrumentation", message: "@waku/core has its own @waku/proto copy; status codes will not be captured" });
  }
  const origEncode = lp.LightPushRequestV3.encode;
  lp.LightPushRequestV3.encode = (obj) => {
    state.lightPushCapture.request = obj;
    return origEncode(obj);
  };
  const origDecode = lp.LightPushResponseV3.decode;
  lp.LightPushResponseV3.decode = (buf, opts) => {
    const res = origDecode(buf, opts);
    state.lightPushCapture.response = res;
    return res;
  };
}

// Filter health: FilterCore is the SDK Filter's private `protocol` field (declared
// `private readonly protocol` in @waku/sdk dist/filter/filter.d.ts). The SDK only logs
// ping and re-subscribe failures; wrap the instance methods to surface them.
function instrumentFilter(sdk, node, name) {
  const core = node.filter?.protocol;
  if (!core || typeof core.ping !== "function" || typeof core.subscribe !== "function") {
    emit({ event: "warn", client: name, kind: "instrumentation", message: "filter internals not found; ping/subscribe health not reported" });
    return;
  }
  const origPing = core.ping.bind(core);
  core.ping = async (peerId) => {
    let res;
    try {
      res = await origPing(peerId);
    } catch (e) {
      res = { success: null, failure: { error: `exception: ${errMessage(e)}`, peerId } };
    }
    if (res?.failure) {
      state.filter.pingsFailed += 1;
      emit({ event: "warn", client: name, kind: "filter-ping", peer_id: peerId?.toString(), error: String(res.failure.error) });
    } else {
      state.filter.pingsOk += 1;
      log(`client ${name}: filter ping ok (${peerId?.toString()})`);
    }
    return res;
  };
  const origSubscribe = core.subscribe.bind(core);
  core.subscribe = async (pubsubTopic, peerId, contentTopics) => {
    state.filter.subscribeRequests += 1;
    const res = await origSubscribe(pubsubTopic, peerId, contentTopics);
    if (res?.failure) {
      state.filter.subscribeFailures += 1;
      emit({
        event: "warn",
        client: name,
        kind: "filter-subscribe",
        peer_id: peerId?.toString(),
        pubsub_topic: pubsubTopic,
        content_topics: contentTopics,
        error: String(res.failure.error),
      });
    }
    return res;
  };
  const origUnsubscribe = core.unsubscribe.bind(core);
  core.unsubscribe = async (pubsubTopic, peerId, contentTopics) => {
    if (!state.finished) {
      emit({ event: "warn", client: name, kind: "filter-unsubscribe", peer_id: peerId?.toString(), content_topics: contentTopics });
    }
    return origUnsubscribe(pubsubTopic, peerId, contentTopics);
  };
  const origHandle = core.handleIncomingMessage;
  if (typeof origHandle === "function") {
    core.handleIncomingMessage = async (pubsubTopic, wakuMessage, peerIdStr) => {
      let hash = null;
      try {
        hash = sdk.waku.messageHashStr(pubsubTopic, wakuMessage);
      } catch {
        // leave null
      }
      state.rawPushes.push({
        pubsub_topic: pubsubTopic,
        content_topic: wakuMessage.contentTopic,
        version: wakuMessage.version ?? 0,
        hash,
        from: String(peerIdStr),
        at_ms: elapsed(),
      });
      return origHandle(pubsubTopic, wakuMessage, peerIdStr);
    };
  }
  node.events.addEventListener(sdk.WakuEvent.Connection, (evt) => {
    if (evt.detail === false && !state.finished && state.stage !== "init") {
      emit({ event: "warn", client: name, kind: "disconnected", message: "client lost its last connection" });
    }
  });
}

// ---------------------------------------------------------------- main flow
function utf8(bytes) {
  return new TextDecoder("utf-8", { fatal: false }).decode(bytes);
}

function recordMessage(decoderName, msg) {
  if (!msg) return; // the decoder rejected the message (wrong version / key); SDK calls back with undefined
  const proto = msg.proto ?? {};
  let hash = null;
  try {
    hash = msg.hashStr;
  } catch {
    // leave null
  }
  state.received.push({
    decoder: decoderName,
    payload: utf8(msg.payload),
    payload_hex: Buffer.from(msg.payload).toString("hex"),
    hash,
    timestamp: proto.timestamp != null ? proto.timestamp.toString() : null, // ns, decimal string
    timestamp_ms: msg.timestamp ? msg.timestamp.getTime() : null,
    pubsubTopic: msg.pubsubTopic,
    contentTopic: msg.contentTopic,
    version: msg.version,
    signed: msg.signature ? true : false,
    at_ms: elapsed(),
  });
  log(`client B received via ${decoderName}: ${utf8(msg.payload)}`);
  checkDone();
}

function summariseSendResult(res) {
  return {
    successes: res?.successes?.length ?? 0,
    success_peers: (res?.successes ?? []).map((p) => p.toString()),
    failures: (res?.failures ?? []).map((f) => ({ error: String(f.error), peer_id: f.peerId ? f.peerId.toString() : null })),
  };
}

async function push(sdk, clientA, encoder, kind, index, payloadText, cfg) {
  state.lightPushCapture.request = null;
  state.lightPushCapture.response = null;
  const t0 = Date.now();
  let res = null;
  let exception = null;
  let timedOut = false;
  try {
    let timer;
    const timeout = new Promise((r) => {
      timer = setTimeout(() => r("timeout"), cfg.pushTimeoutMs);
    });
    // autoRetry: false -> the SDK neither re-sends in the background nor "renews"
    // (blacklists for 10 s) the peer after a rejection; we see each first answer.
    const sent = clientA.lightPush.send(encoder, { payload: new TextEncoder().encode(payloadText) }, { autoRetry: false });
    const winner = await Promise.race([sent, timeout]);
    clearTimeout(timer);
    if (winner === "timeout") {
      timedOut = true;
      sent.catch(() => {});
    } else {
      res = winner;
    }
  } catch (e) {
    exception = e;
  }
  const req = state.lightPushCapture.request;
  const resp = state.lightPushCapture.response;
  let hash = null;
  if (req?.message && req.pubsubTopic) {
    try {
      hash = sdk.waku.messageHashStr(req.pubsubTopic, req.message);
    } catch {
      // leave null
    }
  }
  const raw = summariseSendResult(res);
  const ok = !timedOut && !exception && raw.successes > 0;
  let error = null;
  if (timedOut) error = `no answer within ${cfg.pushTimeoutMs} ms`;
  else if (exception) error = `exception: ${errMessage(exception)}`;
  else if (!ok) error = raw.failures[0]?.error ?? "no success and no failure reported";
  const event = {
    event: "pushed",
    kind,
    index,
    payload: payloadText,
    ok,
    error,
    status_code: resp ? resp.statusCode ?? null : null,
    status_desc: resp ? resp.statusDesc ?? null : null,
    relay_peer_count: resp ? resp.relayPeerCount ?? null : null,
    request_id: req?.requestId ?? null,
    response_request_id: resp ? resp.requestId ?? null : null,
    hash,
    timestamp: req?.message?.timestamp != null ? req.message.timestamp.toString() : null,
    raw,
    duration_ms: Date.now() - t0,
  };
  emit(event);
  if (cfg.pushDelayMs > 0) await new Promise((r) => setTimeout(r, cfg.pushDelayMs));
  return ok;
}

async function main() {
  state.stage = "config";
  const cfg = readConfig();
  state.expect = cfg.expect;
  readStdin();

  // Overall budget: from here on, expiry means a timeout report (exit 2). This timer
  // also keeps the event loop alive until the run ends (every end calls process.exit).
  setTimeout(() => {
    void finish(2, report({ timeout: true }));
  }, cfg.timeoutMs);

  state.stage = "load";
  const sdk = await importFromTools("@waku/sdk");
  const symmetric = await importFromTools("@waku/message-encryption", "./symmetric");
  const ecies = await importFromTools("@waku/message-encryption", "./ecies");
  const encryption = await importFromTools("@waku/message-encryption");
  const wakuProto = await importFromTools("@waku/proto");
  instrumentLightPushCodec(wakuProto);

  const networkConfig = { clusterId: cfg.clusterId }; // static sharding (no numShardsInCluster)
  const routingInfo = sdk.utils.createRoutingInfo(networkConfig, { shardId: cfg.shard });
  const expectedTopic = `/waku/2/rs/${cfg.clusterId}/${cfg.shard}`;
  if (routingInfo.pubsubTopic !== expectedTopic) {
    throw new Error(`routing info gives ${routingInfo.pubsubTopic}, expected ${expectedTopic}`);
  }
  const nodeOptions = (bootstrap) => ({
    bootstrapPeers: [bootstrap],
    networkConfig,
    discovery: { dns: false, peerExchange: false, peerCache: false },
    libp2p: { filterMultiaddrs: false, hideWebSocketInfo: true },
    lightPush: { autoRetry: false },
    ...(cfg.filterKeepAliveMs ? { filter: { keepAliveIntervalMs: cfg.filterKeepAliveMs } } : {}),
  });

  // --- client B: filter subscriber on node 2
  state.stage = "client-b-start";
  const clientB = await sdk.createLightNode(nodeOptions(cfg.node2));
  state.nodes.push({ name: "B", node: clientB });
  instrumentFilter(sdk, clientB, "B");
  state.stage = "client-b-wait-peer";
  await waitForServicePeer(sdk, clientB, "B", sdk.Protocols.Filter, sdk.waku.FilterCodecs.SUBSCRIBE, cfg.node2Info, cfg);

  state.stage = "client-b-subscribe";
  const decoders = [
    ["plain", sdk.createDecoder(cfg.contentTopic, routingInfo)],
    ["symmetric", symmetric.createDecoder(cfg.contentTopic, routingInfo, cfg.symKey)],
    ["ecies", ecies.createDecoder(cfg.contentTopic, routingInfo, cfg.bPrivateKey)],
  ];
  // One subscribe call per decoder so each callback knows its decoder. Only the
  // first call sends a SUBSCRIBE request (same content topic); the others are local.
  for (const [name, decoder] of decoders) {
    const ok = await clientB.filter.subscribe(decoder, (msg) => recordMessage(name, msg));
    if (!ok) {
      const err = new Error(`client B: filter subscribe (${name} decoder) failed`);
      err.diag = await diagnose(sdk, clientB, cfg.node2Info);
      throw err;
    }
  }
  emit({
    event: "subscribed",
    peer_id: clientB.peerId.toString(),
    service_peer: cfg.node2Info.peerId,
    pubsub_topic: routingInfo.pubsubTopic,
    content_topic: cfg.contentTopic,
    b_public_key: Buffer.from(encryption.getPublicKey(cfg.bPrivateKey, false)).toString("hex"),
  });

  // --- client A: light push sender on node 1
  state.stage = "client-a-start";
  const clientA = await sdk.createLightNode(nodeOptions(cfg.node1));
  state.nodes.push({ name: "A", node: clientA });
  state.stage = "client-a-wait-peer";
  await waitForServicePeer(sdk, clientA, "A", sdk.Protocols.LightPush, sdk.waku.LightPushCodec, cfg.node1Info, cfg);
  emit({ event: "ready", client: "A", peer_id: clientA.peerId.toString(), service_peer: cfg.node1Info.peerId });

  state.stage = "pushing";
  const plainEncoder = sdk.createEncoder({ contentTopic: cfg.contentTopic, routingInfo });
  let okCount = 0;
  let total = 0;
  for (let i = 0; i < cfg.pushCount; i++) {
    total += 1;
    if (await push(sdk, clientA, plainEncoder, "plain", i, `edge-${i}`, cfg)) okCount += 1;
  }
  const symEncoder = symmetric.createEncoder({ contentTopic: cfg.contentTopic, routingInfo, symKey: cfg.symKey });
  total += 1;
  if (await push(sdk, clientA, symEncoder, "symmetric", 0, "from-js-sym", cfg)) okCount += 1;
  const eciesEncoder = ecies.createEncoder({ contentTopic: cfg.contentTopic, routingInfo, publicKey: cfg.rustPublicKey });
  total += 1;
  if (await push(sdk, clientA, eciesEncoder, "ecies", 0, "from-js-ecies", cfg)) okCount += 1;
  // An ephemeral message: delivered by filter, never stored.
  const ephemeralEncoder = sdk.createEncoder({ contentTopic: cfg.contentTopic, routingInfo, ephemeral: true });
  total += 1;
  if (await push(sdk, clientA, ephemeralEncoder, "ephemeral", 0, "ephemeral-0", cfg)) okCount += 1;
  // Extras last: they are meant to run into the node's per-client share.
  for (let i = 0; i < cfg.extraPushes; i++) {
    total += 1;
    if (await push(sdk, clientA, plainEncoder, "extra", i, `extra-${i}`, cfg)) okCount += 1;
  }

  state.stage = "receiving";
  state.pushesDone = true;
  emit({ event: "pushes-done", attempted: total, ok: okCount, received_so_far: state.received.length });
  checkDone();
  // From here the run ends via checkDone() (expect reached) or the overall timer.
}

// ---------------------------------------------------------------- store mode
// Every store answer the SDK decodes, as the wire carried it (the SDK hands the caller
// only what its decoders accept).
function instrumentStoreCodec(wakuProto, pages) {
  const store = wakuProto.proto_store;
  const origDecode = store.StoreQueryResponse.decode;
  store.StoreQueryResponse.decode = (buf, opts) => {
    const res = origDecode(buf, opts);
    pages.push(res);
    return res;
  };
}

async function storeMain() {
  state.stage = "config";
  const timeoutMs = envInt("TIMEOUT_MS", 60000, { min: 1 });
  const node2 = envStr("NODE2_WS");
  const cfg = {
    timeoutMs,
    node2,
    node2Info: checkWsMultiaddr("NODE2_WS", node2),
    contentTopic: envStr("CONTENT_TOPIC"),
    clusterId: envInt("CLUSTER_ID", 1),
    shard: envInt("SHARD", 0),
    pageSize: envInt("PAGE_SIZE", 20, { min: 1 }),
    peerTimeoutMs: Math.max(1000, Math.min(30000, Math.floor(timeoutMs / 2))),
  };
  setTimeout(() => {
    void finish(2, { event: "error", message: `no answer within ${cfg.timeoutMs} ms`, stage: state.stage });
  }, cfg.timeoutMs);

  state.stage = "load";
  const sdk = await importFromTools("@waku/sdk");
  const wakuProto = await importFromTools("@waku/proto");
  const pages = [];
  instrumentStoreCodec(wakuProto, pages);
  const networkConfig = { clusterId: cfg.clusterId };
  const routingInfo = sdk.utils.createRoutingInfo(networkConfig, { shardId: cfg.shard });

  state.stage = "client-c-start";
  const clientC = await sdk.createLightNode({
    bootstrapPeers: [cfg.node2],
    networkConfig,
    discovery: { dns: false, peerExchange: false, peerCache: false },
    libp2p: { filterMultiaddrs: false, hideWebSocketInfo: true },
  });
  state.nodes.push({ name: "C", node: clientC });
  state.stage = "client-c-wait-peer";
  await waitForServicePeer(sdk, clientC, "C", sdk.Protocols.Store, sdk.waku.StoreCodec, cfg.node2Info, cfg);

  state.stage = "querying";
  const decoder = sdk.createDecoder(cfg.contentTopic, routingInfo);
  let decoded = 0;
  for await (const page of clientC.store.queryGenerator([decoder], { paginationLimit: cfg.pageSize })) {
    for (const promise of page) {
      if (await promise) decoded += 1;
    }
  }
  const entries = [];
  for (const res of pages) {
    for (const kv of res.messages ?? []) {
      const m = kv.message;
      let recomputed = null;
      if (m) {
        try {
          recomputed = sdk.waku.messageHashStr(kv.pubsubTopic ?? "", m);
        } catch {
          // leave null
        }
      }
      entries.push({
        hash: kv.messageHash ? Buffer.from(kv.messageHash).toString("hex") : null,
        recomputed_hash: recomputed,
        pubsub_topic: kv.pubsubTopic ?? null,
        content_topic: m?.contentTopic ?? null,
        payload: m ? utf8(m.payload) : null,
        version: m?.version ?? 0,
        timestamp: m?.timestamp != null ? m.timestamp.toString() : null,
        ephemeral: m?.ephemeral ?? null,
      });
    }
  }
  await finish(0, {
    event: "store-report",
    pages: pages.map((p) => ({ status_code: p.statusCode ?? null, messages: (p.messages ?? []).length })),
    entries,
    decoded,
    elapsed_ms: elapsed(),
  });
}

const run = process.env.MODE === "store" ? storeMain : main;
run().catch(async (e) => {
  log("fatal:", e);
  const diag = e?.diag;
  await finish(1, { event: "error", message: errMessage(e), stage: state.stage, ...(diag ? { diag } : {}) });
});
