// soak.mjs - `make soak`: a bounded soak test of segd. Starts segd (SEGD_BIN, the release build
// from `make soak`) on 127.0.0.1 port 0 with a fresh data directory and, for SOAK_SECONDS, runs
// a mixed workload from SOAK_CLIENTS concurrent clients on loopback; then compares what the
// server holds with the clients' own model of what was acknowledged, kills segd with SIGKILL,
// starts it again on the same data directory and compares again. It samples the server's RSS
// and fails on steady growth per acknowledged write, any 5xx, a sanitizer report, a mismatch.
//
// Not part of `make test` (it takes minutes). Node's standard library only (Node 18 and 20).
//
// How the model stays exact with concurrent clients: each client owns a fixed set of person
// slots and talks to them one request at a time, so the order of its acknowledged writes is the
// order the server applied them (a read right after a write must show it). A few shared people
// get only commutative writes from every client (events, each client's own tag and attribute).
//
// How the data set stays bounded: a fixed population (clients x people per client), events capped
// per person; a person at the cap is erased (DELETE) and its slot starts over under a new user id
// (`soak-c<client>-s<slot>-g<generation>`), so erased ids never come back legitimately. Memory is
// judged per acknowledged write: the engine never reuses an event row or a person id and keeps
// every messageId for 30 days (docs/INTERNALS.md, docs/PERFORMANCE.md), so some growth per write
// is by design, and SQLite's page cache (cache_size 256 MiB) follows the database file, which
// grows too (message ids, free pages). Two checks after the warm-up (the first third of the run):
// the RSS grows by at most SOAK_MAX_BYTES_PER_WRITE per acknowledged write (about 65 B is
// usual), and the rest of the RSS - less what /metrics counts for the engine and the dedup set
// (segd_engine_bytes, segd_dedup_bytes) and less the size of segd.db (the most SQLite can cache)
// - stays within +50% of its level at a third of the run: that part levels off (+10 to +20% is
// usual), and a leak shows there first: 300 bytes leaked a request (a test shim around
// cJSON_Parse*) made it +95% in the default 120 s.
//
// Environment: SOAK_SECONDS (120), SOAK_CLIENTS (8), SOAK_PEOPLE (people per client, 40),
// SOAK_EVENT_CAP (events per person, 150), SOAK_SEED (random), SOAK_RSS_INTERVAL (seconds, 2),
// SOAK_MAX_BYTES_PER_WRITE (RSS growth per acknowledged write after the warm-up, 256),
// SOAK_MAX_REST_GROWTH (percent the rest of the RSS may grow after the warm-up, 50),
// SOAK_REQUEST_TIMEOUT (seconds, 30), SEGD_BIN (default build/asan/segd, see ../e2e/lib/segd.mjs).
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startSegd, metricValue } from '../e2e/lib/segd.mjs';

// ---------------------------------------------------------------- configuration

function envNumber(name, def, min, max) {
    const v = process.env[name];
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
        console.error(`${name}=${v}: expected a number from ${min} to ${max}`);
        process.exit(2);
    }
    return n;
}

const SECONDS = envNumber('SOAK_SECONDS', 120, 5, 86400);
const CLIENTS = Math.floor(envNumber('SOAK_CLIENTS', 8, 1, 64));
const PEOPLE = Math.floor(envNumber('SOAK_PEOPLE', 40, 4, 10000));
const EVENT_CAP = Math.floor(envNumber('SOAK_EVENT_CAP', 150, 20, 100000));
const SEED = Math.floor(envNumber('SOAK_SEED', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31));
const RSS_INTERVAL_MS = envNumber('SOAK_RSS_INTERVAL', 2, 0.2, 600) * 1000;
const MAX_BYTES_PER_WRITE = envNumber('SOAK_MAX_BYTES_PER_WRITE', 256, 1, 1e9);
const MAX_REST_GROWTH_PCT = envNumber('SOAK_MAX_REST_GROWTH', 50, 1, 1e6);
const REQUEST_TIMEOUT_MS = envNumber('SOAK_REQUEST_TIMEOUT', 30, 1, 600) * 1000;

const SQLITE_CACHE_BYTES = 256 * 1048576;   // PRAGMA cache_size of src/store/store.c
const SHARED = 4;                 // people every client writes to
const SHARED_CAP = 60;            // events one client sends to one shared person
const RING = 64;                  // acknowledged messages per client kept for replays
const GONE_KEEP = 4000;           // erased / merged-away people kept for the final checks
const GONE_CHECK = 1500;          // of which at most this many are checked per phase
const SAMPLES_PER_KIND = 20000;   // latency reservoir per request kind
const MAX_PROBLEMS_SHOWN = 25;

const WATCHDOG_MS = (SECONDS + 600) * 1000;
const watchdog = setTimeout(() => {
    console.error(`soak: watchdog: still running ${WATCHDOG_MS / 1000} s after the start; giving up`);
    console.log('0 passed, 1 failed');
    process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

// ---------------------------------------------------------------- small helpers

/** mulberry32: a small seeded PRNG, so that a failing run can be repeated with SOAK_SEED. */
function prng(seed) {
    let a = seed >>> 0;
    const next = () => {
        a = (a + 0x6D2B79F5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return {
        next,
        int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),   // inclusive
        pick: (arr) => arr[Math.floor(next() * arr.length)],
        chance: (p) => next() < p,
    };
}

/** JSON with object keys sorted, to compare values whatever the key order. */
function canon(v) {
    if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
    if (v && typeof v === 'object') {
        return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
    }
    return JSON.stringify(v);
}

const sortedCanon = (arr) => canon([...(arr || [])].sort());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mib = (b) => (b / 1048576).toFixed(1);

// ---------------------------------------------------------------- results

const checks = [];                 // {name, ok, detail}
function check(name, ok, detail = '') {
    checks.push({ name, ok, detail });
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
    return ok;
}

/** Problems seen during the workload, by category; each category is one check at the end. */
const problems = new Map();
function problem(category, text) {
    let p = problems.get(category);
    if (!p) { p = { count: 0, shown: [] }; problems.set(category, p); }
    p.count++;
    if (p.shown.length < MAX_PROBLEMS_SHOWN) p.shown.push(text);
}
function showProblems(category) {
    const p = problems.get(category);
    if (!p) return '';
    for (const t of p.shown) console.log(`    ${category}: ${t}`);
    if (p.count > p.shown.length) console.log(`    ${category}: ... ${p.count - p.shown.length} more`);
    return `${p.count} problem(s)`;
}

/** Latency and status counts per request kind; reservoirs keep memory bounded. */
const stats = new Map();
const statsRng = prng(SEED ^ 0x5eed);
function record(kind, ms, status) {
    let s = stats.get(kind);
    if (!s) { s = { n: 0, samples: [], status: new Map() }; stats.set(kind, s); }
    s.n++;
    if (s.samples.length < SAMPLES_PER_KIND) s.samples.push(ms);
    else {
        const j = Math.floor(statsRng.next() * s.n);
        if (j < SAMPLES_PER_KIND) s.samples[j] = ms;
    }
    const k = String(status);
    s.status.set(k, (s.status.get(k) || 0) + 1);
}
function percentile(sorted, p) {
    if (!sorted.length) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// ---------------------------------------------------------------- HTTP

let server = null;           // the Segd of ../e2e/lib/segd.mjs
let acked = 0;               // acknowledged writes: messages applied, REST writes answered 2xx
let requests = 0;
const fiveXX = [];

/** One request with a deadline; records latency under `kind`. Returns {status, json, text} or
 *  {status: 0, error} when the request itself failed (connection refused or reset, timeout). */
async function call(kind, method, path, body) {
    const headers = {};
    let payload;
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        payload = JSON.stringify(body);
    }
    const t0 = performance.now();
    requests++;
    let res, text;
    try {
        res = await fetch(server.url + path, { method, headers, body: payload, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        text = await res.text();
    } catch (e) {
        const why = e.cause ? (e.cause.code || e.cause.message) : (e.name === 'TimeoutError' ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : e.message);
        record(kind, performance.now() - t0, 'error');
        problem('request errors', `${method} ${path}: ${why}`);
        return { status: 0, error: why, text: '' };
    }
    record(kind, performance.now() - t0, res.status);
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    if (res.status >= 500) {
        fiveXX.push(`${method} ${path} -> ${res.status} ${text.slice(0, 200)}`);
        problem('5xx', `${method} ${path} ${payload ? payload.slice(0, 200) : ''} -> ${res.status} ${text.slice(0, 200)}`);
    }
    return { status: res.status, json, text };
}

function describeCall(method, path, body, r, expected) {
    const b = body === undefined ? '' : ' ' + JSON.stringify(body).slice(0, 240);
    return `${method} ${path}${b}: expected ${expected}, got ${r.status} ${(r.text || r.error || '').trim().slice(0, 240)}`;
}

// ---------------------------------------------------------------- the model

const EVENT_TYPES = ['soak_view', 'soak_click', 'soak_buy'];
const PLANS = ['free', 'basic', 'pro', 'team', 'enterprise'];
const TAGS = ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7'];
const GROUPS = ['g0', 'g1', 'g2', 'g3'];
const SOURCES = ['ads', 'search', 'social', 'mail'];
const PAGES = ['Home', 'Pricing', 'Docs', 'Blog'];
const SCREENS = ['Main', 'Settings', 'Profile'];
// Attributes the profile shows that the model does not keep (compared apart or not at all).
const SERVER_ATTRS = new Set(['user_id', 'anonymous_ids', 'created_at', 'last_seen', 'tags']);
// Declared at the start: a string that looks like a date-time must stay the string sent.
const DECLARED = [['soak_code', 'string'], ['soak_level', 'number']];

/** A person as the model knows it (exists on the server). */
function newPerson(uid, slot) {
    return { uid, slot, anon: new Set(), tags: [], attrs: {}, events: new Map(), id: null, tainted: false };
}

function setTags(p, list) {
    p.tags = [];
    for (const t of list) if (!p.tags.includes(t)) p.tags.push(t);
}

function setAttrs(p, attrs) {
    for (const [k, v] of Object.entries(attrs)) {
        if (k === 'tags') { setTags(p, v || []); continue; }
        if (v === null) delete p.attrs[k];
        else p.attrs[k] = v;
    }
}

/** Merges `from` into `into` the way docs/API.md ("Identity") says: events move, attributes the
 *  target lacks are copied (tags count as an attribute: copied when the target has none). */
function mergeInto(into, from) {
    for (const [k, e] of from.events) into.events.set(k, e);
    for (const [k, v] of Object.entries(from.attrs)) if (!(k in into.attrs)) into.attrs[k] = v;
    if (into.tags.length === 0) into.tags = [...from.tags];
    for (const a of from.anon) into.anon.add(a);
    if (from.tainted) into.tainted = true;
}

const shared = [];               // the shared people: {uid, events, tagsOn: Set, attrs}
for (let i = 0; i < SHARED; i++) shared.push({ uid: `soak-shared-${i}`, events: new Map(), tagsOn: new Set(), attrs: {}, tainted: false });
const sharedByUid = new Map(shared.map((p) => [p.uid, p]));

const gone = [];                 // {uid, anon: [...], email, id, how}; a reservoir of GONE_KEEP
let goneSeen = 0;
const goneRng = prng(SEED ^ 0x60e);
function addGone(g) {
    goneSeen++;
    if (gone.length < GONE_KEEP) gone.push(g);
    else {
        const j = Math.floor(goneRng.next() * goneSeen);
        if (j < GONE_KEEP) gone[j] = g;
    }
}
const erasedMessages = [];        // acknowledged single messages of people erased since, for a replay at the end

class Client {
    constructor(c) {
        this.c = c;
        this.rng = prng(SEED + 7919 * (c + 1));
        this.seq = 0;
        this.slots = Array.from({ length: PEOPLE }, () => ({ gen: 0 }));
        this.persons = new Map();        // uid -> person, every person of this client that exists
        this.anonOwner = new Map();      // anonymous id -> person
        this.ring = [];                  // {path, body, person}: acknowledged single messages with a messageId
        this.sharedSent = new Array(SHARED).fill(0);
        this.ops = 0;
    }

    uidOf(slot) { return `soak-c${this.c}-s${slot}-g${this.slots[slot].gen}`; }
    personAt(slot) { return this.persons.get(this.uidOf(slot)); }
    nextKey() { return `c${this.c}.${++this.seq}`; }
    messageId() { return `m-${this.c}-${++this.seq}`; }

    /** Room for events left in slot s (planned: events a batch being built adds). */
    room(s, planned) {
        const p = this.personAt(s);
        return EVENT_CAP - (p ? p.events.size : 0) - (planned ? planned.get(s) || 0 : 0);
    }

    /** A random slot whose person has room for n more events (a scan after a few random
     *  probes); -1 if none has. */
    slotWithRoom(n, planned) {
        for (let tries = 0; tries < 4; tries++) {
            const s = this.rng.int(0, PEOPLE - 1);
            if (this.room(s, planned) >= n) return s;
        }
        const from = this.rng.int(0, PEOPLE - 1);
        for (let i = 0; i < PEOPLE; i++) {
            const s = (from + i) % PEOPLE;
            if (this.room(s, planned) >= n) return s;
        }
        return -1;
    }

    /** A random slot for n events: when its person is at the cap, it is erased first (so the
     *  data set stays bounded and erasure runs all the time). -1 when the erasure failed. */
    async slotForEvents(n) {
        const s = this.rng.int(0, PEOPLE - 1);
        if (this.room(s) >= n) return s;
        await this.opErase(s);
        return this.room(s) >= n ? s : -1;
    }

    /** Builds a message of `type` for slot s (or a shared person); `extra` fields win. */
    message(type, s, extra = {}) {
        const m = { type, userId: s === null ? extra.userId : this.uidOf(s) };
        const r = this.rng;
        if (r.chance(0.85)) m.messageId = this.messageId();
        if (type === 'track') {
            m.event = r.pick(EVENT_TYPES);
            m.properties = { k: this.nextKey(), amount: r.int(1, 500) };
            if (r.chance(0.3)) m.properties.plan = r.pick(PLANS);
            if (r.chance(0.2)) m.properties.price = r.int(1, 10000) / 4;
        } else if (type === 'page') {
            m.name = r.pick(PAGES);
            m.properties = { k: this.nextKey(), url: `https://soak.example/${m.name.toLowerCase()}?n=${r.int(1, 50)}` };
        } else if (type === 'screen') {
            m.name = r.pick(SCREENS);
            m.properties = { k: this.nextKey() };
        } else if (type === 'identify') {
            m.traits = this.traits(this.uidOf(s), this.personAt(s));
        } else if (type === 'group') {
            m.groupId = r.pick(GROUPS);
        }
        return Object.assign(m, extra);
    }

    /** Traits for an identify: a new person gets an e-mail; the rest is a random subset. */
    traits(uid, p) {
        const r = this.rng, t = {};
        if (!p || (!('email' in p.attrs) && r.chance(0.5))) t.email = `${uid}@soak.example`;
        if (r.chance(0.6)) t.plan = r.chance(0.1) ? null : r.pick(PLANS);
        if (r.chance(0.5)) t.score = r.int(-1000, 1000) / 8;
        if (r.chance(0.3)) t.vip = r.chance(0.5);
        if (r.chance(0.2)) t.soak_code = `2024-0${r.int(1, 9)}-1${r.int(0, 9)}T10:00:00Z`;
        if (r.chance(0.2)) t.soak_level = r.int(0, 99);
        if (r.chance(0.15)) t.tags = Array.from({ length: r.int(0, 3) }, () => r.pick(TAGS));
        return t;
    }

    /** Applies one acknowledged message to the model (the identity rules of docs/API.md, for the
     *  cases this workload produces). Returns the person it landed on. */
    apply(m) {
        const sp = m.userId && sharedByUid.get(m.userId);
        if (sp) {
            if (m.type === 'track') sp.events.set(m.properties.k, { event: m.event, props: m.properties });
            if (m.type === 'identify') Object.assign(sp.attrs, m.traits);
            return sp;
        }
        let p;
        if (m.type === 'alias') {
            const prev = this.persons.get(m.previousId) || this.anonOwner.get(m.previousId);
            const target = this.persons.get(m.userId);
            if (target && target !== prev) {
                mergeInto(target, prev);
                for (const a of prev.anon) this.anonOwner.set(a, target);
                if (prev.uid) this.dropPerson(prev, 'merged');
                p = target;
            } else {
                prev.uid = m.userId;
                prev.slot = this.slotOfUid(m.userId);
                this.persons.set(m.userId, prev);
                p = prev;
            }
            return p;
        }
        if (m.userId) {
            p = this.persons.get(m.userId);
            if (m.anonymousId) {
                const a = this.anonOwner.get(m.anonymousId);
                if (a && a.uid === null) {
                    if (p) {
                        mergeInto(p, a);
                        for (const x of a.anon) this.anonOwner.set(x, p);
                    } else {
                        a.uid = m.userId;
                        a.slot = this.slotOfUid(m.userId);
                        this.persons.set(m.userId, a);
                        p = a;
                    }
                } else if (!a) {
                    if (!p) { p = newPerson(m.userId, this.slotOfUid(m.userId)); this.persons.set(m.userId, p); }
                    p.anon.add(m.anonymousId);
                    this.anonOwner.set(m.anonymousId, p);
                }
            } else if (!p) {
                p = newPerson(m.userId, this.slotOfUid(m.userId));
                this.persons.set(m.userId, p);
            }
        } else {
            p = this.anonOwner.get(m.anonymousId);
            if (!p) {
                p = newPerson(null, -1);
                p.anon.add(m.anonymousId);
                this.anonOwner.set(m.anonymousId, p);
            }
        }
        if (m.type === 'identify') setAttrs(p, m.traits || {});
        else if (m.type === 'track') p.events.set(m.properties.k, { event: m.event, props: m.properties });
        else if (m.type === 'page') p.events.set(m.properties.k, { event: 'page_view', props: { ...m.properties, name: m.name } });
        else if (m.type === 'screen') p.events.set(m.properties.k, { event: 'screen_view', props: { ...m.properties, name: m.name } });
        else if (m.type === 'group') {
            const g = p.attrs.groups || [];
            if (!g.includes(m.groupId)) p.attrs.groups = [...g, m.groupId];
        }
        return p;
    }

    slotOfUid(uid) {
        const m = /^soak-c\d+-s(\d+)-g\d+$/.exec(uid);
        return m ? Number(m[1]) : -1;
    }

    /** The person left the server (erased, or merged into another): its slot starts over. */
    dropPerson(p, how) {
        this.persons.delete(p.uid);
        for (const a of p.anon) if (this.anonOwner.get(a) === p) this.anonOwner.delete(a);
        if (p.slot >= 0 && this.uidOf(p.slot) === p.uid) this.slots[p.slot].gen++;
        if (!p.tainted) addGone({ uid: p.uid, anon: how === 'erased' ? [...p.anon] : [], email: how === 'erased' ? p.attrs.email : undefined, id: how === 'erased' ? p.id : null, how });
        if (how === 'erased') {
            for (const x of this.ring) {
                if (x.person === p && erasedMessages.length < 200) erasedMessages.push({ path: x.path, body: x.body, uid: p.uid });
            }
        }
    }

    remember(path, body, person) {
        if (!body.messageId || !person || !person.uid || sharedByUid.has(person.uid)) return;
        if (this.ring.length >= RING) this.ring.splice(this.rng.int(0, RING - 1), 1);
        this.ring.push({ path, body, person });
    }

    taint(persons) { for (const p of persons) if (p) p.tainted = true; }

    // ------------------------------------------------------------ operations

    /** A single tracking call; applied to the model when answered 200 {"success": true}. */
    async single(kind, m, kindName = kind) {
        const { type, ...body } = m;
        const path = `/v1/${type}`;
        const r = await call(kindName, 'POST', path, body);
        if (r.status === 200 && r.json && r.json.success === true) {
            acked++;
            const p = this.apply(m);
            this.remember(path, body, p);
            return p;
        }
        problem('unexpected answers', describeCall('POST', path, body, r, '200 {"success":true}'));
        this.taint([this.persons.get(m.userId), this.anonOwner.get(m.anonymousId), this.persons.get(m.previousId)]);
        return null;
    }

    async opEvent(type) {
        const s = await this.slotForEvents(1);
        if (s >= 0) await this.single(type, this.message(type, s));
    }

    async opIdentify() {
        const s = this.rng.int(0, PEOPLE - 1);
        await this.single('identify', this.message('identify', s));
    }

    async opGroup() {
        const s = this.rng.int(0, PEOPLE - 1);
        await this.single('group', this.message('group', s));
    }

    /** /v1/batch of 50-200 messages: events, identifies, groups, an anonymous visit merged by an
     *  identify, repeats of acknowledged messages and of a message of the same batch. */
    async opBatch() {
        const r = this.rng;
        const n = r.int(50, 200);
        let room = 0;
        for (let s = 0; s < PEOPLE; s++) room += Math.max(0, this.room(s));
        if (room < 2 * n) await this.opErase(this.fullest());
        const planned = new Map();
        const batch = [];
        const toApply = [];          // null for the messages the server must drop as repeats
        const touched = new Set();
        while (batch.length < n) {
            const x = r.next();
            if (x < 0.04 && this.ring.length) {
                const old = r.pick(this.ring);
                if (old.person.uid && this.persons.get(old.person.uid) === old.person) {
                    batch.push({ type: old.path.slice(4), ...old.body });
                    toApply.push(null);
                    continue;
                }
            }
            if (x < 0.07 && batch.length && batch[batch.length - 1].messageId) {
                batch.push({ ...batch[batch.length - 1] });
                toApply.push(null);
                continue;
            }
            if (x < 0.09 && batch.length + 3 <= n) {
                // an anonymous visit, then the identify that merges it
                const s = this.slotWithRoom(2, planned);
                if (s >= 0) {
                    const anon = `an-${this.c}-${++this.seq}`;
                    for (let i = 0; i < 2; i++) {
                        const m = { type: 'track', anonymousId: anon, event: 'soak_anon_view', properties: { k: this.nextKey() }, messageId: this.messageId() };
                        batch.push(m); toApply.push(m);
                    }
                    const m = { type: 'identify', userId: this.uidOf(s), anonymousId: anon, traits: {}, messageId: this.messageId() };
                    batch.push(m); toApply.push(m);
                    planned.set(s, (planned.get(s) || 0) + 2);
                    touched.add(s);
                    continue;
                }
            }
            if (x < 0.15) {
                const s = r.int(0, PEOPLE - 1);
                const m = this.message(r.chance(0.8) ? 'identify' : 'group', s);
                batch.push(m); toApply.push(m); touched.add(s);
                continue;
            }
            if (x < 0.20 && this.sharedOk()) {
                const i = r.int(0, SHARED - 1);
                if (this.sharedSent[i] < SHARED_CAP) {
                    this.sharedSent[i]++;
                    const m = this.message('track', null, { userId: shared[i].uid });
                    batch.push(m); toApply.push(m);
                    continue;
                }
            }
            const s = this.slotWithRoom(1, planned);
            if (s < 0) break;
            const m = this.message(r.pick(['track', 'track', 'track', 'page', 'screen']), s);
            batch.push(m); toApply.push(m);
            planned.set(s, (planned.get(s) || 0) + 1);
            touched.add(s);
        }
        if (batch.length === 0) return this.opErase(this.fullest());
        const res = await call('batch', 'POST', '/v1/batch', { batch });
        if (res.status === 200 && res.json && res.json.success === true) {
            for (const m of toApply) {
                if (!m) continue;
                acked++;
                this.apply(m);
            }
            return;
        }
        problem('unexpected answers', describeCall('POST', '/v1/batch', { batch: batch.slice(0, 2) }, res, `200 {"success":true} (batch of ${batch.length})`));
        this.taint([...touched].map((s) => this.personAt(s)));
        for (const m of toApply) if (m && m.userId && sharedByUid.has(m.userId)) sharedByUid.get(m.userId).tainted = true;
    }

    sharedOk() { return this.sharedSent.some((n) => n < SHARED_CAP); }

    /** Anonymous visits (tracks, a page, maybe an identify with traits), then a message with
     *  userId + anonymousId (an identify, or a track) that merges them into the person. */
    async opAnonMerge() {
        const r = this.rng;
        const visits = r.int(1, 3);
        const s = await this.slotForEvents(visits + 1);
        if (s < 0) return;
        const anon = `an-${this.c}-${++this.seq}`;
        for (let i = 0; i < visits; i++) {
            const m = r.chance(0.7)
                ? { type: 'track', anonymousId: anon, event: 'soak_anon_view', properties: { k: this.nextKey() } }
                : { type: 'page', anonymousId: anon, name: r.pick(PAGES), properties: { k: this.nextKey(), url: 'https://soak.example/' } };
            if (r.chance(0.7)) m.messageId = this.messageId();
            if (!(await this.single('anon', m))) return;
        }
        if (r.chance(0.5)) {
            const t = { first_source: r.pick(SOURCES) };
            if (r.chance(0.3)) t.tags = [r.pick(TAGS)];
            if (!(await this.single('anon', { type: 'identify', anonymousId: anon, traits: t, messageId: this.messageId() }))) return;
        }
        const m = r.chance(0.8)
            ? { type: 'identify', userId: this.uidOf(s), anonymousId: anon, traits: r.chance(0.5) ? { plan: r.pick(PLANS) } : {}, messageId: this.messageId() }
            : { type: 'track', userId: this.uidOf(s), anonymousId: anon, event: 'soak_click', properties: { k: this.nextKey(), amount: 1 }, messageId: this.messageId() };
        await this.single('merge', m);
    }

    /** alias: an anonymous visitor's id into a person, or (rarely) one person's user id into another. */
    async opAlias() {
        const r = this.rng;
        if (r.chance(0.3)) {
            const a = this.rng.int(0, PEOPLE - 1), b = this.rng.int(0, PEOPLE - 1);
            const pa = this.personAt(a), pb = this.personAt(b);
            if (a === b || !pa || !pb || pa.events.size + pb.events.size > EVENT_CAP) return this.opIdentify();
            await this.single('alias', { type: 'alias', previousId: pa.uid, userId: pb.uid, messageId: this.messageId() });
            return;
        }
        const s = await this.slotForEvents(2);
        if (s < 0) return;
        const anon = `an-${this.c}-${++this.seq}`;
        if (!(await this.single('anon', { type: 'track', anonymousId: anon, event: 'soak_anon_view', properties: { k: this.nextKey() } }))) return;
        if (r.chance(0.5) && !(await this.single('anon', { type: 'identify', anonymousId: anon, traits: { first_source: r.pick(SOURCES) } }))) return;
        await this.single('alias', { type: 'alias', previousId: anon, userId: this.uidOf(s), messageId: this.messageId() });
    }

    /** PATCH attributes and tags of an existing person (404 expected for one that does not exist). */
    async opPatch() {
        const r = this.rng;
        const s = r.int(0, PEOPLE - 1);
        const p = this.personAt(s);
        const body = {};
        if (r.chance(0.6)) {
            body.attributes = {};
            if (r.chance(0.5)) body.attributes.score = r.int(0, 10000) / 100;
            if (r.chance(0.4)) body.attributes.plan = r.chance(0.15) ? null : r.pick(PLANS);
            if (r.chance(0.2)) body.attributes.soak_level = r.int(0, 99);
        }
        if (!body.attributes || r.chance(0.7)) {
            body.tags = {};
            // at least one of add and remove: segd answers {"tags": {}} with 400 invalid_field
            const add = r.chance(0.7), remove = !add || r.chance(0.4);
            if (add) body.tags.add = Array.from({ length: r.int(1, 3) }, () => r.pick(TAGS));
            if (remove) body.tags.remove = Array.from({ length: r.int(1, 2) }, () => r.pick(TAGS));
        }
        const path = `/api/people/${encodeURIComponent(this.uidOf(s))}`;
        const res = await call('patch', 'PATCH', path, body);
        if (!p) {
            if (res.status !== 404) { problem('unexpected answers', describeCall('PATCH', path, body, res, '404 (the person does not exist)')); }
            return;
        }
        if (res.status !== 200 || !res.json) {
            problem('unexpected answers', describeCall('PATCH', path, body, res, '200 with the profile'));
            p.tainted = true;
            return;
        }
        acked++;
        if (body.attributes) setAttrs(p, body.attributes);
        if (body.tags) {
            for (const t of body.tags.add || []) if (!p.tags.includes(t)) p.tags.push(t);
            p.tags = p.tags.filter((t) => !(body.tags.remove || []).includes(t));
        }
        p.id = res.json.id;
        this.compareProfile(p, res.json, 'PATCH answer');
    }

    /** POST /api/people: 201 when it creates, 200 when it updates; tags replace. */
    async opUpsert() {
        const r = this.rng;
        const s = r.int(0, PEOPLE - 1);
        const uid = this.uidOf(s);
        const p = this.personAt(s);
        const body = { user_id: uid, attributes: { plan: r.pick(PLANS) } };
        if (!p) body.attributes.email = `${uid}@soak.example`;
        if (r.chance(0.5)) body.attributes.score = r.int(0, 1000);
        if (r.chance(0.6)) body.tags = Array.from({ length: r.int(0, 3) }, () => r.pick(TAGS));
        const res = await call('upsert', 'POST', '/api/people', body);
        const want = p ? 200 : 201;
        if (res.status !== want || !res.json) {
            problem('unexpected answers', describeCall('POST', '/api/people', body, res, `${want} with the profile`));
            if (p) p.tainted = true;
            return;
        }
        acked++;
        const q = p || newPerson(uid, s);
        if (!p) this.persons.set(uid, q);
        setAttrs(q, body.attributes);
        if (body.tags) setTags(q, body.tags);
        q.id = res.json.id;
        this.compareProfile(q, res.json, 'POST /api/people answer');
    }

    /** The slot whose person has the most events. */
    fullest() {
        let most = -1, s = 0;
        for (let i = 0; i < PEOPLE; i++) {
            const p = this.personAt(i);
            if (p && p.events.size > most) { most = p.events.size; s = i; }
        }
        return s;
    }

    /** DELETE (erasure) of slot s's person (by user id or id); 404 expected when there is none. */
    async opErase(s) {
        const p = this.personAt(s);
        const by = p && p.id && this.rng.chance(0.3) ? 'id' : 'user_id';
        const key = by === 'id' ? p.id : this.uidOf(s);
        const path = `/api/people/${encodeURIComponent(key)}?by=${by}`;
        const res = await call('delete', 'DELETE', path);
        if (!p) {
            if (res.status !== 404) problem('unexpected answers', describeCall('DELETE', path, undefined, res, '404 (the person does not exist)'));
            return;
        }
        if (res.status !== 200 || !res.json || res.json.erased !== true) {
            problem('unexpected answers', describeCall('DELETE', path, undefined, res, '200 {"erased":true}'));
            p.tainted = true;
            return;
        }
        acked++;
        this.dropPerson(p, 'erased');
    }

    /** Re-declares the declared attributes (200), or with another type (409). */
    async opDeclare() {
        const [name, type] = this.rng.pick(DECLARED);
        const conflict = this.rng.chance(0.3);
        const body = { name, type: conflict ? (type === 'string' ? 'number' : 'string') : type };
        const res = await call('declare', 'POST', '/api/attributes', body);
        const ok = conflict ? res.status === 409 && res.json && res.json.error && res.json.error.code === 'type_conflict' : res.status === 200;
        if (!ok) problem('unexpected answers', describeCall('POST', '/api/attributes', body, res, conflict ? '409 type_conflict' : '200'));
    }

    /** Resends an acknowledged message (same messageId): 200 and applied no second time. */
    async opReplay() {
        if (!this.ring.length) return this.opIdentify();
        const x = this.rng.pick(this.ring);
        if (!x.person.uid || this.persons.get(x.person.uid) !== x.person) return this.opIdentify();
        const res = await call('replay', 'POST', x.path, x.body);
        if (res.status !== 200 || !res.json || res.json.success !== true) {
            problem('unexpected answers', describeCall('POST', x.path, x.body, res, '200 {"success":true}'));
        }
    }

    /** Writes to the shared people: an event, or this client's own tag or attribute. */
    async opShared() {
        const r = this.rng;
        const i = r.int(0, SHARED - 1);
        const sp = shared[i];
        const x = r.next();
        if (x < 0.5 && this.sharedSent[i] < SHARED_CAP) {
            this.sharedSent[i]++;
            await this.single('shared', this.message('track', null, { userId: sp.uid }), 'shared');
            return;
        }
        if (x < 0.7) {
            await this.single('shared', { type: 'identify', userId: sp.uid, traits: { [`shared_c${this.c}`]: r.int(0, 1000) }, messageId: this.messageId() }, 'shared');
            return;
        }
        const tag = `c${this.c}`;
        const add = r.chance(0.5);
        const body = add ? { tags: { add: [tag] } } : { tags: { remove: [tag] } };
        if (r.chance(0.5)) body.attributes = { [`shared_c${this.c}`]: r.int(0, 1000) };
        const path = `/api/people/${sp.uid}`;
        const res = await call('shared', 'PATCH', path, body);
        if (res.status !== 200) {
            problem('unexpected answers', describeCall('PATCH', path, body, res, '200'));
            sp.tainted = true;
            return;
        }
        acked++;
        if (add) sp.tagsOn.add(tag); else sp.tagsOn.delete(tag);
        if (body.attributes) Object.assign(sp.attrs, body.attributes);
        const mine = (res.json.tags || []).includes(tag);
        if (mine !== add) problem('live mismatches', `PATCH ${path} ${JSON.stringify(body)}: tag ${tag} ${add ? 'missing' : 'still there'} in the answer ${JSON.stringify(res.json.tags)}`);
    }

    /** Invalid writes: a type conflict (422) and a batch with one bad message (400, nothing applied).
     *  The conflicts are on a declared attribute: an undeclared one might get its type right here. */
    async opInvalid() {
        const s = this.rng.int(0, PEOPLE - 1);
        const uid = this.uidOf(s);
        if (this.rng.chance(0.5)) {
            const body = { userId: uid, traits: { soak_level: 'not a number' } };
            const res = await call('invalid', 'POST', '/v1/identify', body);
            if (res.status !== 422 || !res.json || !res.json.error || res.json.error.code !== 'type_conflict') {
                problem('unexpected answers', describeCall('POST', '/v1/identify', body, res, '422 type_conflict'));
                this.taint([this.personAt(s)]);
            }
            return;
        }
        const body = { batch: [
            { type: 'track', userId: uid, event: 'soak_view', properties: { k: this.nextKey(), amount: 1 } },
            { type: 'identify', userId: uid, traits: { soak_level: 'yes' } },
        ] };
        const res = await call('invalid', 'POST', '/v1/batch', body);
        if (res.status !== 400 || !res.json || !res.json.error || res.json.error.code !== 'invalid_batch') {
            problem('unexpected answers', describeCall('POST', '/v1/batch', body, res, '400 invalid_batch'));
            this.taint([this.personAt(s)]);
        }
    }

    /** Reads one of this client's people by user id, e-mail, anonymous id or id and compares. */
    async opReadProfile() {
        const r = this.rng;
        const s = r.int(0, PEOPLE - 1);
        const p = this.personAt(s);
        let path = `/api/people/${encodeURIComponent(this.uidOf(s))}`;
        if (p && r.chance(0.4)) {
            const keys = [];
            if (p.attrs.email) keys.push(['email', p.attrs.email]);
            if (p.anon.size) keys.push(['anonymous_id', [...p.anon][0]]);
            if (p.id) keys.push(['id', p.id]);
            if (keys.length) {
                const [by, key] = r.pick(keys);
                path = `/api/people/${encodeURIComponent(key)}?by=${by}`;
            }
        }
        if (r.chance(0.3)) path += (path.includes('?') ? '&' : '?') + `events_limit=${r.int(0, 50)}`;
        const res = await call('read_profile', 'GET', path);
        if (!p) {
            if (res.status !== 404) problem('live mismatches', describeCall('GET', path, undefined, res, '404 (the person does not exist)'));
            return;
        }
        if (res.status !== 200) { problem('live mismatches', describeCall('GET', path, undefined, res, '200')); return; }
        p.id = res.json.id;
        this.compareProfile(p, res.json, `GET ${path}`);
    }

    /** Pages through one person's events and compares them with the model. */
    async opReadEvents() {
        const s = this.rng.int(0, PEOPLE - 1);
        const p = this.personAt(s);
        if (!p || p.tainted) return this.opReadProfile();
        const diffs = await compareEvents(p, this.rng.int(5, 100), 'read_events');
        for (const d of diffs) problem('live mismatches', `${p.uid}: ${d}`);
    }

    async opReadSchema() {
        const res = await call('read_schema', 'GET', '/api/schema');
        if (res.status !== 200 || !res.json || !Array.isArray(res.json.attributes) || !Array.isArray(res.json.event_types)) {
            problem('unexpected answers', describeCall('GET', '/api/schema', undefined, res, '200 with attributes and event_types'));
        }
    }

    async opReadMetrics() {
        const res = await call('read_metrics', 'GET', '/metrics');
        if (res.status !== 200 || metricValue(res.text, 'segd_people') === undefined) {
            problem('unexpected answers', describeCall('GET', '/metrics', undefined, res, '200 with segd_people'));
        }
    }

    compareProfile(p, prof, where) {
        if (p.tainted) return;
        for (const d of diffProfile(p, prof, false)) problem('live mismatches', `${where} (${p.uid}): ${d}`);
    }

    async run(deadline) {
        const ops = [
            [18, () => this.opEvent('track')], [4, () => this.opEvent('page')], [3, () => this.opEvent('screen')],
            [10, () => this.opIdentify()], [6, () => this.opBatch()], [5, () => this.opAnonMerge()],
            [3, () => this.opAlias()], [8, () => this.opPatch()], [4, () => this.opUpsert()],
            [1, () => this.opErase(this.rng.int(0, PEOPLE - 1))], [2, () => this.opGroup()], [1, () => this.opDeclare()],
            [4, () => this.opReplay()], [5, () => this.opShared()], [1, () => this.opInvalid()],
            [7, () => this.opReadProfile()], [3, () => this.opReadEvents()], [1, () => this.opReadSchema()],
            [1, () => this.opReadMetrics()],
        ];
        const total = ops.reduce((a, [w]) => a + w, 0);
        // Bounded in count as well as in time: a client never runs more than 10000 ops a second.
        const maxOps = SECONDS * 10000;
        while (performance.now() < deadline && this.ops < maxOps && !stopping) {
            let x = this.rng.next() * total;
            let op = ops[ops.length - 1][1];
            for (const [w, f] of ops) { if ((x -= w) < 0) { op = f; break; } }
            this.ops++;
            await op();
        }
    }
}

// ---------------------------------------------------------------- comparisons

/** Differences between the model of a person and a profile (GET /api/people/...). */
function diffProfile(p, prof, strictEvents) {
    const d = [];
    if (!prof || typeof prof !== 'object') return ['no profile'];
    if (prof.user_id !== p.uid) d.push(`user_id ${JSON.stringify(prof.user_id)}, expected ${JSON.stringify(p.uid)}`);
    if (sortedCanon(prof.anonymous_ids) !== sortedCanon([...p.anon])) d.push(`anonymous_ids ${JSON.stringify(prof.anonymous_ids)}, expected ${JSON.stringify([...p.anon])}`);
    if (sortedCanon(prof.tags) !== sortedCanon(p.tags)) d.push(`tags ${JSON.stringify(prof.tags)}, expected ${JSON.stringify(p.tags)}`);
    const counts = {};
    for (const e of p.events.values()) counts[e.event] = (counts[e.event] || 0) + 1;
    if (canon(prof.event_counts || {}) !== canon(counts)) d.push(`event_counts ${canon(prof.event_counts)}, expected ${canon(counts)}`);
    const got = {};
    for (const [k, v] of Object.entries(prof.attributes || {})) if (!SERVER_ATTRS.has(k)) got[k] = v;
    const want = { ...p.attrs };
    if (want.groups) want.groups = [...want.groups].sort();
    if (Array.isArray(got.groups)) got.groups = [...got.groups].sort();
    if (canon(got) !== canon(want)) d.push(`attributes ${canon(got)}, expected ${canon(want)}`);
    if (strictEvents && Array.isArray(prof.events)) {
        for (const e of prof.events) {
            const k = e.properties && e.properties.k;
            const m = p.events.get(k);
            if (!m) d.push(`profile shows event ${canon(e)} the model does not have`);
        }
    }
    return d;
}

/** Pages through GET /api/events for p (by user id, or its first anonymous id) and compares
 *  every event with the model: each acknowledged event exactly once, no other, newest first. */
async function compareEvents(p, limit, kind) {
    const d = [];
    const seen = new Set();
    let cursor = null, prevTs = null, pages = 0;
    const maxPages = Math.ceil((p.events.size + 1) / limit) + 5;
    const who = p.uid !== null ? `user_id=${encodeURIComponent(p.uid)}` : `anonymous_id=${encodeURIComponent([...p.anon][0])}`;
    for (; pages < maxPages; pages++) {
        const path = `/api/events?${who}&limit=${limit}${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`;
        const res = await call(kind, 'GET', path);
        if (res.status !== 200 || !res.json || !Array.isArray(res.json.events)) {
            d.push(describeCall('GET', path, undefined, res, '200 with events'));
            return d;
        }
        if (res.json.events.length > limit) d.push(`${path}: ${res.json.events.length} events, more than limit`);
        for (const e of res.json.events) {
            const k = e.properties && e.properties.k;
            if (prevTs !== null && e.timestamp > prevTs) d.push(`event ${k} at ${e.timestamp} after one at ${prevTs}: not newest first`);
            prevTs = e.timestamp;
            if (seen.has(k)) { d.push(`event ${k} listed twice`); continue; }
            seen.add(k);
            const m = p.events.get(k);
            if (!m) { d.push(`event ${canon(e)} was never acknowledged for this person`); continue; }
            if (m.event !== e.event || canon(m.props) !== canon(e.properties)) d.push(`event ${k}: got ${e.event} ${canon(e.properties)}, expected ${m.event} ${canon(m.props)}`);
        }
        cursor = res.json.next_cursor;
        if (!cursor) break;
    }
    if (cursor) d.push(`paging did not end within ${maxPages} pages of ${limit}`);
    const missing = [...p.events.keys()].filter((k) => !seen.has(k));
    if (missing.length) d.push(`${missing.length} acknowledged event(s) missing, e.g. ${missing.slice(0, 5).join(', ')}`);
    return d.length > 20 ? [...d.slice(0, 20), `... ${d.length - 20} more`] : d;
}

/** Runs fn over items, at most n at once. */
async function parallel(items, n, fn) {
    let next = 0;
    const worker = async () => { while (next < items.length) { const i = next++; await fn(items[i], i); } };
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** Compares every person of the model with the server; one check per aspect. */
async function compareAll(clients, phase) {
    const profileDiffs = [], eventDiffs = [], goneDiffs = [], keyDiffs = [];
    const people = [];
    for (const cl of clients) for (const p of cl.persons.values()) people.push(p);
    const anonLeft = clients.reduce((a, cl) => a + [...cl.anonOwner.values()].filter((p) => p.uid === null).length, 0);
    let compared = 0, tainted = 0;
    await parallel(people, 8, async (p) => {
        if (p.tainted) { tainted++; return; }
        compared++;
        const path = `/api/people/${encodeURIComponent(p.uid)}?events_limit=20`;
        const res = await call('final_profile', 'GET', path);
        if (res.status !== 200) { profileDiffs.push(describeCall('GET', path, undefined, res, '200')); return; }
        for (const x of diffProfile(p, res.json, true)) profileDiffs.push(`${p.uid}: ${x}`);
        if (p.id && res.json.id !== p.id) profileDiffs.push(`${p.uid}: id ${res.json.id}, was ${p.id}`);
        p.id = res.json.id;
        for (const x of await compareEvents(p, 100, 'final_events')) eventDiffs.push(`${p.uid}: ${x}`);
        // every other key of the person resolves to it
        const keys = [...p.anon].map((a) => ['anonymous_id', a]);
        if (p.attrs.email) keys.push(['email', p.attrs.email]);
        keys.push(['id', p.id]);
        for (const [by, key] of keys) {
            const kp = `/api/people/${encodeURIComponent(key)}?by=${by}&events_limit=0`;
            const r = await call('final_profile', 'GET', kp);
            if (r.status !== 200 || !r.json || r.json.id !== p.id) keyDiffs.push(describeCall('GET', kp, undefined, r, `200 with id ${p.id} (${p.uid})`));
        }
    });
    // shared people: the sum of every client's commutative writes
    for (const sp of shared) {
        if (sp.tainted) { tainted++; continue; }
        compared++;
        const path = `/api/people/${sp.uid}?events_limit=0`;
        const res = await call('final_profile', 'GET', path);
        if (res.status !== 200) { profileDiffs.push(describeCall('GET', path, undefined, res, '200')); continue; }
        const model = { uid: sp.uid, anon: new Set(), tags: [...sp.tagsOn], attrs: { ...sp.attrs }, events: sp.events };
        for (const x of diffProfile(model, res.json, false)) profileDiffs.push(`${sp.uid}: ${x}`);
        for (const x of await compareEvents(model, 100, 'final_events')) eventDiffs.push(`${sp.uid}: ${x}`);
    }
    // erased and merged-away people: their user ids (and, erased, every key) answer 404
    const goneSample = gone.slice(0, GONE_CHECK);
    await parallel(goneSample, 8, async (g) => {
        const paths = [`/api/people/${encodeURIComponent(g.uid)}`];
        if (g.how === 'erased') {
            paths.push(`/api/events?user_id=${encodeURIComponent(g.uid)}`);
            for (const a of g.anon) paths.push(`/api/people/${encodeURIComponent(a)}?by=anonymous_id`);
            if (g.email) paths.push(`/api/people/${encodeURIComponent(g.email)}?by=email`);
            if (g.id) paths.push(`/api/people/${g.id}?by=id`);
        }
        for (const path of paths) {
            const r = await call('final_gone', 'GET', path);
            if (r.status !== 404) goneDiffs.push(describeCall('GET', path, undefined, r, `404 (${g.how})`));
        }
    });
    const show = (list) => { for (const x of list.slice(0, MAX_PROBLEMS_SHOWN)) console.log(`    ${x}`); if (list.length > MAX_PROBLEMS_SHOWN) console.log(`    ... ${list.length - MAX_PROBLEMS_SHOWN} more`); };
    check(`${phase}: ${compared} profiles match the model (${tainted} left out after a failed write)`, profileDiffs.length === 0, profileDiffs.length ? `${profileDiffs.length} difference(s)` : '');
    show(profileDiffs);
    check(`${phase}: every acknowledged event there exactly once (/api/events paging)`, eventDiffs.length === 0, eventDiffs.length ? `${eventDiffs.length} difference(s)` : '');
    show(eventDiffs);
    check(`${phase}: anonymous ids, e-mails and ids resolve to their person`, keyDiffs.length === 0, keyDiffs.length ? `${keyDiffs.length} difference(s)` : '');
    show(keyDiffs);
    check(`${phase}: ${goneSample.length} erased or merged-away people stay gone (${goneSeen} in all)`, goneDiffs.length === 0, goneDiffs.length ? `${goneDiffs.length} came back` : '');
    show(goneDiffs);

    // totals: /metrics and /api/schema against the model
    const totals = new Map();
    const attrPeople = new Map();
    let livePeople = 0;
    const all = [...people, ...shared.map((sp) => ({ events: sp.events, attrs: sp.attrs }))];
    for (const p of all) {
        livePeople++;
        for (const e of p.events.values()) totals.set(e.event, (totals.get(e.event) || 0) + 1);
        for (const k of Object.keys(p.attrs)) attrPeople.set(k, (attrPeople.get(k) || 0) + 1);
    }
    const totalDiffs = [];
    if (tainted === 0) {
        const m = await call('final_metrics', 'GET', '/metrics');
        const sc = await call('final_schema', 'GET', '/api/schema');
        if (m.status !== 200 || sc.status !== 200 || !sc.json) totalDiffs.push(`GET /metrics -> ${m.status}, GET /api/schema -> ${sc.status}`);
        else {
            const events = [...totals.values()].reduce((a, b) => a + b, 0);
            if (anonLeft) totalDiffs.push(`the model still has ${anonLeft} anonymous people`);
            if (metricValue(m.text, 'segd_people') !== livePeople + anonLeft) totalDiffs.push(`segd_people ${metricValue(m.text, 'segd_people')}, expected ${livePeople + anonLeft}`);
            if (metricValue(m.text, 'segd_events') !== events) totalDiffs.push(`segd_events ${metricValue(m.text, 'segd_events')}, expected ${events}`);
            for (const t of sc.json.event_types) {
                const want = totals.get(t.name) || 0;
                if (t.events !== want) totalDiffs.push(`schema event type ${t.name}: events ${t.events}, expected ${want}`);
            }
            for (const [name, n] of totals) if (!sc.json.event_types.some((t) => t.name === name)) totalDiffs.push(`schema lacks event type ${name} (${n} events)`);
            for (const a of sc.json.attributes) {
                if (a.standard && a.name !== 'email') continue;
                const want = attrPeople.get(a.name) || 0;
                if (a.people !== want) totalDiffs.push(`schema attribute ${a.name}: people ${a.people}, expected ${want}`);
            }
            for (const [name, type] of DECLARED) {
                const a = sc.json.attributes.find((x) => x.name === name);
                if (!a || a.type !== type) totalDiffs.push(`declared attribute ${name}: ${JSON.stringify(a)}, expected type ${type}`);
            }
        }
    }
    check(`${phase}: /metrics people and events, /api/schema counts match the model`, totalDiffs.length === 0, tainted ? 'not compared (a failed write left the model uncertain)' : totalDiffs.length ? `${totalDiffs.length} difference(s)` : `${livePeople} people, ${[...totals.values()].reduce((a, b) => a + b, 0)} events`);
    show(totalDiffs);
}

// ---------------------------------------------------------------- RSS

const rssSamples = [];          // {t (s since the workload start), rss, acked, engine}
function readRss(pid) {
    try {
        const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : null;
    } catch { return null; }
}

/** Engine and dedup memory as /metrics counts them: what the RSS growth is expected to follow. */
async function engineBytes() {
    const r = await call('read_metrics', 'GET', '/metrics');
    if (r.status !== 200) return null;
    let sum = 0;
    for (const line of r.text.split('\n')) {
        if (line.startsWith('segd_engine_bytes{') || line.startsWith('segd_dedup_bytes ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
}

/** Size of the SQLite database file: SQLite's page cache (cache_size is 256 MiB, src/store/store.c)
 *  holds at most that much, and grows with it. */
function dbBytes() {
    try { return fs.statSync(`${server.dataDir}/segd.db`).size; } catch { return 0; }
}

/** Least-squares slope of y over x. */
function slope(points) {
    const n = points.length;
    if (n < 2) return NaN;
    let sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (const [x, y] of points) { sx += x; sy += y; sxx += x * x; sxy += x * y; }
    const den = n * sxx - sx * sx;
    return den === 0 ? NaN : (n * sxy - sx * sy) / den;
}

// ---------------------------------------------------------------- main

let stopping = false;

async function main() {
    console.log(`soak: ${SECONDS} s, ${CLIENTS} clients x ${PEOPLE} people (+${SHARED} shared), <= ${EVENT_CAP} events a person, seed ${SEED}`);
    server = await startSegd(null, { timeoutMs: 60000 });
    console.log(`soak: segd ${process.env.SEGD_BIN || '(default SEGD_BIN)'} pid ${server.proc.pid} on ${server.url}, data ${server.dataDir}`);
    try {
        await soak();
    } finally {
        await server.cleanup().catch((e) => check('no sanitizer report in segd\'s stderr (cleanup)', false, e.message.slice(0, 2000)));
    }
}

async function soak() {
    // setup: declared attributes and the shared people
    for (const [name, type] of DECLARED) {
        const r = await call('declare', 'POST', '/api/attributes', { name, type });
        if (r.status !== 201) problem('unexpected answers', describeCall('POST', '/api/attributes', { name, type }, r, '201'));
    }
    for (const sp of shared) {
        const r = await call('upsert', 'POST', '/api/people', { user_id: sp.uid, tags: [] });
        if (r.status !== 201) { problem('unexpected answers', describeCall('POST', '/api/people', { user_id: sp.uid }, r, '201')); sp.tainted = true; }
    }
    const clients = Array.from({ length: CLIENTS }, (_, c) => new Client(c));

    // the workload, with the RSS sampler beside it
    const t0 = performance.now();
    const deadline = t0 + SECONDS * 1000;
    let sampling = true;
    const sampler = (async () => {
        for (let i = 0; sampling && i < SECONDS * 1000 / RSS_INTERVAL_MS + 10; i++) {
            const rss = readRss(server.proc.pid);
            const at = acked;
            const engine = await engineBytes();
            if (rss !== null) rssSamples.push({ t: (performance.now() - t0) / 1000, rss, acked: at, engine, db: dbBytes() });
            const wait = Math.max(0, t0 + (i + 1) * RSS_INTERVAL_MS - performance.now());
            if (sampling) await sleep(Math.min(wait, RSS_INTERVAL_MS));
        }
    })();
    const progress = setInterval(() => {
        const now = performance.now();
        const s = rssSamples[rssSamples.length - 1];
        if (!server.running()) stopping = true;     // it crashed: the checks below say so
        console.log(`soak: ${((now - t0) / 1000).toFixed(0)} s, ${requests} requests, ${acked} acknowledged writes, RSS ${s ? mib(s.rss) : '?'} MiB, ${[...problems.values()].reduce((a, p) => a + p.count, 0)} problem(s)`);
    }, 10000);
    const runs = clients.map((cl) => cl.run(deadline).catch((e) => problem('client crashes', `client ${cl.c}: ${e.stack || e}`)));
    // Every client stops at the deadline; a request still hanging is cut by its own timeout.
    const hang = sleep(SECONDS * 1000 + REQUEST_TIMEOUT_MS * 4 + 10000).then(() => 'hang');
    const finished = await Promise.race([Promise.all(runs).then(() => 'done'), hang]);
    stopping = true;
    clearInterval(progress);
    const elapsed = (performance.now() - t0) / 1000;
    sampling = false;
    await sampler;
    if (finished === 'hang') problem('client crashes', 'clients did not stop after the deadline');

    // ---- summary of the workload
    console.log(`\nsoak: workload ran ${elapsed.toFixed(1)} s: ${requests} requests (${(requests / elapsed).toFixed(0)}/s), ${acked} acknowledged writes (${(acked / elapsed).toFixed(0)}/s), ${goneSeen} people erased or merged away`);
    console.log('  kind             count    req/s   p50 ms   p99 ms   max ms  statuses');
    for (const [kind, s] of [...stats.entries()].sort()) {
        const sorted = [...s.samples].sort((a, b) => a - b);
        const statuses = [...s.status.entries()].sort().map(([k, v]) => `${k}:${v}`).join(' ');
        console.log(`  ${kind.padEnd(15)} ${String(s.n).padStart(6)} ${(s.n / elapsed).toFixed(1).padStart(8)} ${percentile(sorted, 0.5).toFixed(2).padStart(8)} ${percentile(sorted, 0.99).toFixed(2).padStart(8)} ${sorted[sorted.length - 1].toFixed(2).padStart(8)}  ${statuses}`);
    }

    // ---- memory
    console.log(`\n  RSS samples (every ${RSS_INTERVAL_MS / 1000} s): time s, RSS MiB, acknowledged writes, engine+dedup MiB (/metrics), segd.db MiB`);
    const rows = [];
    for (const s of rssSamples) rows.push(`${s.t.toFixed(0).padStart(4)}s ${mib(s.rss).padStart(7)} ${String(s.acked).padStart(8)} ${s.engine === null ? '     ?' : mib(s.engine).padStart(6)} ${mib(s.db).padStart(6)}`);
    for (let i = 0; i < rows.length; i += 3) console.log('   ' + rows.slice(i, i + 3).join('  |'));
    const warm = rssSamples.filter((s) => s.t >= elapsed / 3);
    if (warm.length >= 3) {
        const first = warm[0], last = warm[warm.length - 1];
        const writes = last.acked - first.acked;
        const perWrite = slope(warm.map((s) => [s.acked, s.rss]));
        const grown = (last.rss - first.rss) / first.rss * 100;
        const counted = warm.every((s) => s.engine !== null);
        // what the RSS holds besides the engine, the dedup set and SQLite's page cache
        const rest = (s) => s.rss - s.engine - Math.min(s.db, SQLITE_CACHE_BYTES);
        const slopeOf = (f) => (counted ? slope(warm.map((s) => [s.acked, f(s)])) : NaN);
        console.log(`  after the warm-up (from ${first.t.toFixed(0)} s): RSS ${mib(first.rss)} -> ${mib(last.rss)} MiB (${grown >= 0 ? '+' : ''}${grown.toFixed(1)}%) over ${writes} acknowledged writes;`);
        console.log(`  growth per acknowledged write: RSS ${perWrite.toFixed(1)} B = engine+dedup ${slopeOf((s) => s.engine).toFixed(1)} B`
            + ` + segd.db (SQLite's cache) ${slopeOf((s) => s.db).toFixed(1)} B + the rest ${slopeOf(rest).toFixed(1)} B`);
        check(`RSS growth per acknowledged write after the warm-up <= ${MAX_BYTES_PER_WRITE} B`, writes > 0 && perWrite <= MAX_BYTES_PER_WRITE,
            writes > 0 ? `${perWrite.toFixed(1)} B a write (${grown.toFixed(1)}% over the last two thirds)` : 'no writes after the warm-up');
        // The live data set is stable, but the engine's arrays, the dedup set and SQLite's page
        // cache grow by design (see the head of this file); the rest must level off.
        if (counted) {
            const rest0 = rest(first), rest1 = rest(last);
            check(`RSS less engine, dedup and SQLite cache stays within +${MAX_REST_GROWTH_PCT}% of its level at 1/3 of the run`, rest1 <= rest0 * (1 + MAX_REST_GROWTH_PCT / 100),
                `${mib(rest0)} -> ${mib(rest1)} MiB (${rest1 >= rest0 ? '+' : ''}${((rest1 - rest0) / rest0 * 100).toFixed(1)}%)`);
        } else {
            check('/metrics gave the engine memory for the RSS check', false, 'a /metrics read failed');
        }
    } else {
        check('RSS sampled after the warm-up', false, `only ${warm.length} samples`);
    }

    // ---- what the workload saw
    const alive = server.running();
    check('segd kept running through the workload', alive, alive ? '' : `it exited ${JSON.stringify(server.exit)}; stderr:\n${server.stderr().slice(-3000)}`);
    check(`no 5xx answer (${requests} requests)`, fiveXX.length === 0, fiveXX.length ? `${fiveXX.length}: ${showProblems('5xx')}` : '');
    check('no request failed or timed out', !problems.has('request errors'), showProblems('request errors'));
    check('every write and error answered as documented', !problems.has('unexpected answers'), showProblems('unexpected answers'));
    check('every read during the workload matched the model (read-your-writes)', !problems.has('live mismatches'), showProblems('live mismatches'));
    check('no client crashed', !problems.has('client crashes'), showProblems('client crashes'));
    check('no sanitizer report in segd\'s stderr during the workload', assertCleanQuiet(), '');

    // ---- the server against the model, then kill -9 and again
    const fiveXXWorkload = fiveXX.length;
    console.log('');
    await compareAll(clients, 'before kill -9');
    const pid0 = server.proc.pid;
    await server.kill9();
    check(`kill -9 of segd (pid ${pid0})`, server.exit && server.exit.signal === 'SIGKILL', server.exit ? `exit ${JSON.stringify(server.exit)}` : 'still running');
    const tr = performance.now();
    let readyOk = false, readyDetail = '';
    try {
        await server.restart({ timeoutMs: 120000 });
        for (let i = 0; i < 600 && !readyOk; i++) {
            const r = await call('readyz', 'GET', '/readyz');
            if (r.status === 200) readyOk = true;
            else await sleep(100);
        }
        readyDetail = `ready in ${((performance.now() - tr) / 1000).toFixed(2)} s, RSS ${mib(readRss(server.proc.pid) || 0)} MiB after the rebuild`;
    } catch (e) {
        readyDetail = e.message.slice(0, 2000);
    }
    if (!check('segd restarts on the same data directory and /readyz answers 200', readyOk, readyDetail)) return;
    await compareAll(clients, 'after kill -9 and restart');

    // ---- repeated messageIds after the restart: the dedup set came back from the store
    const replays = [];
    for (const cl of clients) for (const x of cl.ring) if (x.person.uid && cl.persons.get(x.person.uid) === x.person && !x.person.tainted) replays.push({ cl, x });
    const replayDiffs = [];
    await parallel(replays.slice(0, 200), 8, async ({ x }) => {
        const r = await call('replay', 'POST', x.path, x.body);
        if (r.status !== 200) replayDiffs.push(describeCall('POST', x.path, x.body, r, '200'));
    });
    await parallel(erasedMessages.slice(0, 100), 8, async (x) => {
        const r = await call('replay', 'POST', x.path, x.body);
        if (r.status !== 200) replayDiffs.push(describeCall('POST', x.path, x.body, r, '200'));
    });
    const touched = new Set(replays.slice(0, 200).map(({ x }) => x.person));
    await parallel([...touched], 8, async (p) => {
        const res = await call('final_profile', 'GET', `/api/people/${encodeURIComponent(p.uid)}`);
        if (res.status !== 200) { replayDiffs.push(`GET /api/people/${p.uid} -> ${res.status}`); return; }
        for (const x of diffProfile(p, res.json, true)) replayDiffs.push(`${p.uid} after replays: ${x}`);
    });
    for (const x of erasedMessages.slice(0, 100)) {
        const r = await call('final_gone', 'GET', `/api/people/${encodeURIComponent(x.uid)}`);
        if (r.status !== 404) replayDiffs.push(`replaying ${x.path} ${JSON.stringify(x.body)} of an erased person brought it back: GET /api/people/${x.uid} -> ${r.status}`);
    }
    check(`after the restart, ${Math.min(200, replays.length)} repeated messageIds (and ${Math.min(100, erasedMessages.length)} of erased people) are applied no second time`, replayDiffs.length === 0, replayDiffs.length ? `${replayDiffs.length} difference(s)` : '');
    for (const x of replayDiffs.slice(0, MAX_PROBLEMS_SHOWN)) console.log(`    ${x}`);

    // ---- a clean exit
    try {
        const r = await server.stop('SIGTERM');
        check('SIGTERM: segd exits 0 with no sanitizer report', r.code === 0 && !r.signal, JSON.stringify(r));
    } catch (e) {
        check('SIGTERM: segd exits 0 with no sanitizer report', false, e.message.slice(0, 3000));
    }
    check('no 5xx answer in the checks after the workload', fiveXX.length === fiveXXWorkload, fiveXX.slice(fiveXXWorkload, fiveXXWorkload + 5).join('; '));
}

function assertCleanQuiet() {
    try { server.assertClean(); return true; } catch (e) { console.log(e.message.slice(0, 3000)); return false; }
}

try {
    await main();
} catch (e) {
    check('the soak ran to its end', false, e.stack || String(e));
}
const failed = checks.filter((c) => !c.ok).length;
console.log(`\n${checks.length - failed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
