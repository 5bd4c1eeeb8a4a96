// segd.mjs - what the end-to-end tests share: starting and stopping segd on a fresh
// data directory, JSON requests (with the master key as Bearer or Basic), raw HTTP over
// node:net for what fetch cannot show (an early 413), and the sanitizer check.
//
// Every segd started here is killed when the test file ends (the test's or suite's
// `after` hook, and a process 'exit' handler as the last resort), and its temporary
// data directory is removed. Its stderr is kept; a request helper that sees an
// AddressSanitizer, UBSan or LeakSanitizer report in it throws, and stop() throws
// when the process did not exit 0 or left such a report.
//
// Only Node 18 built-ins: node:child_process, node:fs, node:os, node:path, node:net,
// global fetch.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const SANITIZER = /ERROR: AddressSanitizer|runtime error:|LeakSanitizer/;
const live = new Set();          // running child processes
const tempDirs = new Set();      // data directories to remove at exit

process.on('exit', () => {
    for (const p of live) {
        try { p.kill('SIGKILL'); } catch { /* already gone */ }
    }
    for (const d of tempDirs) {
        try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ }
    }
});

export function segdBin() {
    const bin = process.env.SEGD_BIN || path.resolve('build/asan/segd');
    if (!fs.existsSync(bin)) throw new Error(`SEGD_BIN ${bin} does not exist; run make build/asan/segd`);
    return bin;
}

export function makeDataDir(prefix = 'segd-e2e-') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    tempDirs.add(dir);
    return dir;
}

export function removeDataDir(dir) {
    fs.rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
}

function sanitizerEnv(extra) {
    const env = { ...process.env, ...extra };
    // Keep the sanitizers' reports (stderr) and make LSan run at a clean exit.
    if (!env.ASAN_OPTIONS) env.ASAN_OPTIONS = 'detect_leaks=1:abort_on_error=0';
    if (!env.UBSAN_OPTIONS) env.UBSAN_OPTIONS = 'print_stacktrace=1';
    // A master key of the parent's environment must not leak into tests that start
    // segd without one.
    if (!extra || !('SEGD_MASTER_KEY' in extra)) delete env.SEGD_MASTER_KEY;
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    return env;
}

export function sanitizerReport(text) {
    const m = SANITIZER.exec(text);
    if (!m) return null;
    const from = Math.max(0, m.index - 200);
    return text.slice(from, from + 3000);
}

/** Runs `segd ARGS` to its end (for commands that must exit by themselves). Returns
 *  {code, signal, stdout, stderr}. Kills it after timeoutMs. */
export function runSegd(args, { env = {}, timeoutMs = 15000, input } = {}) {
    return new Promise((resolve, reject) => {
        const proc = spawn(segdBin(), args, { env: sanitizerEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
        live.add(proc);
        let stdout = '', stderr = '';
        proc.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
        proc.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
        const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        proc.on('error', reject);
        proc.on('close', (code, signal) => {
            clearTimeout(timer);
            live.delete(proc);
            resolve({ code, signal, stdout, stderr });
        });
        if (input !== undefined) proc.stdin.end(input);
        else proc.stdin.end();
    });
}

/**
 * Starts `SEGD_BIN serve --listen 127.0.0.1:0 --data DIR ARGS` and waits for its
 * "listening on http://ADDR:PORT" line.
 *   t        a TestContext (or null): its after hook kills the process
 *   args     extra arguments of segd serve
 *   env      extra environment (SEGD_MASTER_KEY ...)
 *   dataDir  an existing data directory (default: a fresh mkdtemp one, removed at the end)
 *   listen   the --listen value (default 127.0.0.1:0)
 *   ready    false: return once segd serves while still loading its store (the
 *            "segd: loading DIR on http://..." line of stderr); await s.listening()
 * Returns the server: {url, port, proc, dataDir, stderr(), stdout(), stop(signal),
 * kill9(), restart(), assertClean(), request helpers...}.
 */
export async function startSegd(t, { args = [], env = {}, dataDir, listen = '127.0.0.1:0', timeoutMs = 15000, ready = true } = {}) {
    const ownsDir = !dataDir;
    const dir = dataDir || makeDataDir();
    const server = new Segd(dir, ownsDir, args, env, listen);
    await server._spawn(timeoutMs, ready);
    if (t && typeof t.after === 'function') t.after(() => server.cleanup());
    return server;
}

/** Starts segd expecting it to fail to start; resolves to {code, signal, stdout, stderr}. */
export function startSegdExpectFailure({ args = [], env = {}, dataDir, listen = '127.0.0.1:0', timeoutMs = 15000 } = {}) {
    const dir = dataDir || makeDataDir();
    return runSegd(['serve', '--listen', listen, '--data', dir, ...args], { env, timeoutMs }).then((r) => {
        if (!dataDir) removeDataDir(dir);
        const report = sanitizerReport(r.stderr);
        if (report) throw new Error(`segd printed a sanitizer report:\n${report}`);
        return r;
    });
}

export class Segd {
    constructor(dataDir, ownsDir, args, env, listen) {
        this.dataDir = dataDir;
        this.ownsDir = ownsDir;
        this.args = args;
        this.env = env;
        this.listen = listen;
        this.proc = null;
        this.url = null;
        this.port = null;
        this._stderr = '';
        this._stdout = '';
        this._allStderr = '';     // every run's stderr, for the final check
        this.exit = null;         // {code, signal} of the last run once it ended
    }

    stderr() { return this._stderr; }
    stdout() { return this._stdout; }

    _spawn(timeoutMs, waitReady = true) {
        let listened;
        this._listening = new Promise((res) => { listened = res; });
        return new Promise((resolve, reject) => {
            const argv = ['serve', '--listen', this.listen, '--data', this.dataDir, ...this.args];
            const proc = spawn(segdBin(), argv, { env: sanitizerEnv(this.env), stdio: ['ignore', 'pipe', 'pipe'] });
            this.proc = proc;
            this.exit = null;
            this._stderr = '';
            this._stdout = '';
            live.add(proc);
            let settled = false;
            const timer = setTimeout(() => {
                if (settled) return;
                settled = true;
                proc.kill('SIGKILL');
                reject(new Error(`segd did not print "listening on" within ${timeoutMs} ms; stderr:\n${this._stderr}`));
            }, timeoutMs);
            const found = (m) => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                this.url = m[1];
                this.port = Number(m[3]);
                resolve(this);
            };
            proc.stdout.setEncoding('utf8').on('data', (d) => {
                this._stdout += d;
                const m = /listening on (http:\/\/(\S+):(\d+))\s*\n/.exec(this._stdout);
                if (m) {
                    listened(m[1]);
                    found(m);
                }
            });
            proc.stderr.setEncoding('utf8').on('data', (d) => {
                this._stderr += d;
                this._allStderr += d;
                // "segd: loading DIR on http://ADDR:PORT": served (503) while the engine loads
                const m = /loading .* on (http:\/\/(\S+):(\d+))\s*\n/.exec(this._stderr);
                if (m && !waitReady) found(m);
            });
            this._exited = new Promise((res) => {
                proc.on('close', (code, signal) => {
                    live.delete(proc);
                    this.exit = { code, signal };
                    if (!settled) {
                        settled = true;
                        clearTimeout(timer);
                        reject(new Error(`segd exited (code ${code}, signal ${signal}) before listening; stderr:\n${this._stderr}`));
                    }
                    res(this.exit);
                });
            });
            proc.on('error', (e) => {
                if (!settled) { settled = true; clearTimeout(timer); reject(e); }
            });
        });
    }

    running() { return this.proc && this.exit === null; }

    /** Throws when any run of this server printed a sanitizer report. */
    assertClean() {
        const r = sanitizerReport(this._allStderr);
        if (r) throw new Error(`segd printed a sanitizer report:\n${r}`);
    }

    /** Waits for the process to end, at most ms; returns {code, signal} or null. */
    async waitExit(ms = 10000) {
        if (!this.proc) return this.exit;
        let timer;
        const t = new Promise((res) => { timer = setTimeout(() => res(null), ms); });
        const r = await Promise.race([this._exited, t]);
        clearTimeout(timer);
        return r;
    }

    /** Sends `signal` (default SIGTERM), waits for the exit, checks the sanitizers.
     *  Returns {code, signal}. Throws when the exit is not clean (code 0) for SIGTERM/SIGINT
     *  unless {allowDirty: true}. */
    async stop(signal = 'SIGTERM', { allowDirty = false, timeoutMs = 15000 } = {}) {
        if (this.running()) this.proc.kill(signal);
        let r = await this.waitExit(timeoutMs);
        if (!r) {
            this.proc.kill('SIGKILL');
            r = await this.waitExit(5000);
            throw new Error(`segd did not exit within ${timeoutMs} ms of ${signal}; stderr:\n${this._stderr}`);
        }
        this.assertClean();
        if (!allowDirty && (signal === 'SIGTERM' || signal === 'SIGINT') && (r.code !== 0 || r.signal)) {
            throw new Error(`segd exited with code ${r.code}, signal ${r.signal} after ${signal}; stderr:\n${this._stderr}`);
        }
        return r;
    }

    /** kill -9: no chance to flush anything. */
    async kill9() {
        if (this.running()) this.proc.kill('SIGKILL');
        await this.waitExit(10000);
        this.assertClean();
    }

    /** Starts segd again on the same data directory (after stop() or kill9()). With
     *  {ready: false} it returns as soon as segd serves while loading (see listening()). */
    async restart({ timeoutMs = 15000, ready = true } = {}) {
        if (this.running()) throw new Error('restart: segd is still running; stop() or kill9() it first');
        await this._spawn(timeoutMs, ready);
        return this;
    }

    /** Resolves when this run printed "listening on" (the engine is loaded). */
    listening() { return this._listening; }

    /** 1 once "listening on" was printed by this run. */
    isListening() { return /listening on http:/.test(this._stdout); }

    /** For `after` hooks: SIGTERM (then SIGKILL if need be), remove the data directory,
     *  check the sanitizers. Never leaves the process running. */
    async close() {
        try {
            if (this.running()) await this.stop('SIGTERM', { allowDirty: true });
        } finally {
            await this.cleanup();
        }
    }

    /** Kills the process if it runs and removes the data directory if it made it. Then
     *  checks the sanitizers (so a test's after hook fails on a report). */
    async cleanup() {
        if (this.running()) {
            this.proc.kill('SIGKILL');
            await this.waitExit(10000);
        }
        if (this.ownsDir) removeDataDir(this.dataDir);
        this.assertClean();
    }

    // ---- requests ----

    /** A request; returns {status, headers, text, json}. opts: {method, body (object ->
     *  JSON; string/Buffer as is), headers, bearer, basic, contentType}. */
    async request(method, p, opts = {}) {
        const headers = { ...(opts.headers || {}) };
        let body = opts.body;
        if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body) && !(body instanceof Uint8Array)) {
            body = JSON.stringify(body);
        }
        if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
            headers['Content-Type'] = opts.contentType || 'application/json';
        }
        if (opts.bearer !== undefined) headers.Authorization = `Bearer ${opts.bearer}`;
        if (opts.basic !== undefined) headers.Authorization = basicAuth(opts.basic, '');
        let res;
        try {
            res = await fetch(this.url + p, { method, headers, body });
        } catch (e) {
            await this.waitExit(1000);
            const died = this.exit ? `segd exited (code ${this.exit.code}, signal ${this.exit.signal})` : 'segd still runs';
            throw new Error(`${method} ${p} failed: ${e.cause ? e.cause.message || e.cause.code : e.message}; ${died}; stderr:\n${this._stderr.slice(-4000)}`);
        }
        const text = await res.text();
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        this.assertClean();
        return { status: res.status, headers: res.headers, text, json };
    }

    get(p, opts) { return this.request('GET', p, opts); }
    post(p, body, opts = {}) { return this.request('POST', p, { ...opts, body }); }
    patch(p, body, opts = {}) { return this.request('PATCH', p, { ...opts, body }); }
    del(p, opts) { return this.request('DELETE', p, opts); }

    /** POST that must answer 200 {"success": true} (a tracking call). */
    async track(kind, msg, opts) {
        const r = await this.post(`/v1/${kind}`, msg, opts);
        if (r.status !== 200 || !r.json || r.json.success !== true) {
            throw new Error(`POST /v1/${kind} ${JSON.stringify(msg).slice(0, 300)} -> ${r.status} ${r.text}`);
        }
        return r;
    }

    /** GET /api/people/{key} that must answer 200; returns the profile. */
    async person(key, { by, eventsLimit, bearer } = {}) {
        const q = new URLSearchParams();
        if (by) q.set('by', by);
        if (eventsLimit !== undefined) q.set('events_limit', String(eventsLimit));
        const qs = q.toString();
        const r = await this.get(`/api/people/${encodeURIComponent(key)}${qs ? '?' + qs : ''}`, { bearer });
        if (r.status !== 200) throw new Error(`GET /api/people/${key} -> ${r.status} ${r.text}`);
        return r.json;
    }

    /** Every event of a person through GET /api/events cursor paging, newest first. */
    async allEvents(query, { limit = 50, bearer } = {}) {
        const events = [];
        let cursor = null;
        for (let pages = 0; pages < 100000; pages++) {
            const q = new URLSearchParams({ ...query, limit: String(limit) });
            if (cursor) q.set('cursor', cursor);
            const r = await this.get(`/api/events?${q}`, { bearer });
            if (r.status !== 200) throw new Error(`GET /api/events?${q} -> ${r.status} ${r.text}`);
            events.push(...r.json.events);
            cursor = r.json.next_cursor;
            if (!cursor) return events;
        }
        throw new Error('GET /api/events paging did not end');
    }

    async metrics(opts) {
        const r = await this.get('/metrics', opts);
        if (r.status !== 200) throw new Error(`GET /metrics -> ${r.status} ${r.text}`);
        return r.text;
    }
}

export function basicAuth(user, pass = '') {
    return 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
}

/** The value of one Prometheus sample (name with its labels as printed), or undefined. */
export function metricValue(text, series) {
    for (const line of text.split('\n')) {
        if (line.startsWith('#')) continue;
        const sp = line.lastIndexOf(' ');
        if (sp > 0 && line.slice(0, sp) === series) return Number(line.slice(sp + 1));
    }
    return undefined;
}

/** Asserts the standard error body: {"error": {"code": code, "message": non-empty, ...}}. */
export function errorOf(r) {
    if (!r.json || typeof r.json.error !== 'object' || r.json.error === null) {
        throw new Error(`expected an error body, got ${r.status} ${r.text}`);
    }
    const e = r.json.error;
    if (typeof e.code !== 'string' || !e.code) throw new Error(`error without code: ${r.text}`);
    if (typeof e.message !== 'string' || e.message.length < 10) throw new Error(`error without a real message: ${r.text}`);
    return e;
}

// ---- raw HTTP over node:net ----

/**
 * Sends raw bytes and reads one response. `parts` is a string/Buffer or an array of
 * them, written in order with `gapMs` between them; writing stops quietly if the
 * server closed (an early answer). Resolves {status, headers (lower-case names), body,
 * raw, interim: [1xx statuses]} once a full final response arrived or the connection
 * closed. Rejects if no final response arrives within timeoutMs.
 */
export function rawHttp(url, parts, { gapMs = 0, timeoutMs = 10000 } = {}) {
    const u = new URL(url);
    const list = Array.isArray(parts) ? parts : [parts];
    return new Promise((resolve, reject) => {
        const sock = net.connect(Number(u.port), u.hostname);
        let buf = Buffer.alloc(0);
        let done = false;
        let closed = false;
        const interim = [];
        const timer = setTimeout(() => finish(new Error(`no HTTP response within ${timeoutMs} ms; got ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`)), timeoutMs);
        function finish(err, value) {
            if (done) return;
            done = true;
            clearTimeout(timer);
            sock.destroy();
            if (err) reject(err); else resolve(value);
        }
        function tryParse(atEnd) {
            for (;;) {
                const headEnd = buf.indexOf('\r\n\r\n');
                if (headEnd < 0) break;
                const head = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
                const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
                if (!m) return finish(new Error(`bad status line ${JSON.stringify(head[0])}`));
                const status = Number(m[1]);
                const headers = {};
                for (const h of head.slice(1)) {
                    const i = h.indexOf(':');
                    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
                }
                if (status >= 100 && status < 200) {
                    interim.push(status);
                    buf = buf.subarray(headEnd + 4);
                    continue;
                }
                const rest = buf.subarray(headEnd + 4);
                if (headers['content-length'] !== undefined) {
                    const n = Number(headers['content-length']);
                    if (rest.length >= n) {
                        return finish(null, { status, headers, body: rest.subarray(0, n).toString('utf8'), interim });
                    }
                } else if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
                    const body = dechunk(rest);
                    if (body !== null) return finish(null, { status, headers, body, interim });
                } else if (atEnd) {
                    return finish(null, { status, headers, body: rest.toString('utf8'), interim });
                }
                break;
            }
            if (atEnd) finish(new Error(`connection closed without a full response; got ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`));
        }
        sock.on('data', (d) => { buf = Buffer.concat([buf, d]); tryParse(false); });
        sock.on('end', () => { closed = true; tryParse(true); });
        sock.on('close', () => { closed = true; tryParse(true); });
        sock.on('error', (e) => {
            // A reset after the answer arrived is fine; before it, it is the result.
            closed = true;
            if (buf.length) tryParse(true);
            else finish(e);
        });
        sock.on('connect', async () => {
            for (let i = 0; i < list.length && !done && !closed; i++) {
                if (i && gapMs) await new Promise((r) => setTimeout(r, gapMs));
                if (done || closed || sock.destroyed) break;
                await new Promise((r) => sock.write(list[i], () => r()));
            }
        });
    });
}

function dechunk(b) {
    const out = [];
    let i = 0;
    for (;;) {
        const eol = b.indexOf('\r\n', i);
        if (eol < 0) return null;
        const n = parseInt(b.subarray(i, eol).toString('latin1'), 16);
        if (Number.isNaN(n)) return null;
        if (n === 0) return Buffer.concat(out).toString('utf8');
        if (b.length < eol + 2 + n + 2) return null;
        out.push(b.subarray(eol + 2, eol + 2 + n));
        i = eol + 2 + n + 2;
    }
}

/** A raw HTTP/1.1 request head. */
export function requestHead(method, url, headers = {}) {
    const u = new URL(url);
    const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    return lines.join('\r\n') + '\r\n\r\n';
}

/** Runs fn over items with at most `n` running at once. */
export async function parallel(items, n, fn) {
    const results = new Array(items.length);
    let next = 0;
    async function worker() {
        while (next < items.length) {
            const i = next++;
            results[i] = await fn(items[i], i);
        }
    }
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
    return results;
}

export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const ID_RE = /^p_[0-9a-hjkmnp-tv-z]{13}$/;
