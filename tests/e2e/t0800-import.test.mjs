// t0800 - bulk import: `segd import --data DIR` (NDJSON and CSV, stop / skip, dedup on
// re-import, the data directory lock), POST /api/import and `segd import --server URL`.
// The server half is skipped while POST /api/import is not routed yet (404 not_found).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSegd, runSegd, makeDataDir, removeDataDir, sanitizerReport, errorOf } from './lib/segd.mjs';

const KEY = 'import-key-0123456789';

/** `segd import ARGS`; fails on a sanitizer report. */
async function segdImport(args, opts) {
    const r = await runSegd(['import', ...args], opts);
    const report = sanitizerReport(r.stderr);
    if (report) throw new Error(`segd import printed a sanitizer report:\n${report}`);
    return r;
}

function writeFile(dir, name, text) {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
}

const ndjson = (msgs) => msgs.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join('\n') + '\n';

describe('segd import --data', () => {
    let files;
    before(() => { files = makeDataDir('segd-e2e-files-'); });
    after(() => removeDataDir(files));

    it('takes the limits a server would use from the environment (SEGD_MAX_ATTRIBUTES)', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        // 10 standard attributes + 7 here: one too many for a limit of 16
        const f = writeFile(files, 'wide.csv', 'user_id,a1,a2,a3,a4,a5,a6,a7\nw1,1,2,3,4,5,6,7\n');
        const limited = await segdImport(['--data', dir, f], { env: { SEGD_MAX_ATTRIBUTES: '16' } });
        assert.equal(limited.code, 1, limited.stderr);
        assert.match(limited.stderr, /limit_attributes/);
        const open = await segdImport(['--data', dir, f]);
        assert.equal(open.code, 0, open.stderr);
    });

    it('imports NDJSON into a data directory; a server started on it has the data; re-importing applies nothing twice', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        const f = writeFile(files, 'ok.ndjson', ndjson([
            { type: 'identify', userId: 'im-1', traits: { plan: 'pro', seats: 3 }, messageId: 'im-m1', timestamp: '2024-01-01T00:00:00Z' },
            { type: 'track', userId: 'im-1', event: 'purchase', properties: { amount: 9.5 }, messageId: 'im-m2', timestamp: '2024-01-02T00:00:00Z' },
            '',
            { type: 'page', anonymousId: 'im-anon', name: 'Home', messageId: 'im-m3', timestamp: '2024-01-03T00:00:00Z' },
            { type: 'identify', userId: 'im-2', anonymousId: 'im-anon', traits: { email: 'im2@ex.com' }, messageId: 'im-m4', timestamp: '2024-01-04T00:00:00Z' },
            { type: 'group', userId: 'im-2', groupId: 'acme', messageId: 'im-m5' },
            { type: 'alias', previousId: 'im-1', userId: 'im-1b', messageId: 'im-m6' },
        ]));
        const r = await segdImport(['--data', dir, f]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /ok\.ndjson: 6 lines read, 6 applied, 0 duplicates, 0 skipped/);

        const again = await segdImport(['--data', dir, f]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /6 lines read, 0 applied, 6 duplicates, 0 skipped/);

        const s = await startSegd(t, { dataDir: dir });
        const p1 = await s.person('im-1b');
        assert.equal(p1.attributes.plan, 'pro');
        assert.equal(p1.attributes.seats, 3);
        assert.deepEqual(p1.events, [{ event: 'purchase', timestamp: '2024-01-02T00:00:00.000Z', properties: { amount: 9.5 } }]);
        const p2 = await s.person('im-2');
        assert.deepEqual(p2.anonymous_ids, ['im-anon']);
        assert.deepEqual(p2.event_counts, { page_view: 1 });
        assert.deepEqual(p2.attributes.groups, ['acme']);
        assert.equal(p2.created_at, '2024-01-03T00:00:00.000Z');
        // the server knows the imported messageIds too
        await s.track('track', { userId: 'im-1b', event: 'purchase', properties: { amount: 9.5 }, messageId: 'im-m2' });
        assert.deepEqual((await s.person('im-1b')).event_counts, { purchase: 1 });
        assert.deepEqual(await s.stop(), { code: 0, signal: null });
    });

    it('--on-error=stop (the default) applies the lines before the first bad one, reports it, exits 1', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        const f = writeFile(files, 'stop.ndjson', ndjson([
            { type: 'track', userId: 'st-1', event: 'a' },
            { type: 'track', userId: 'st-1', event: 'b' },
            { type: 'track', event: 'no-user' },
            { type: 'track', userId: 'st-1', event: 'c' },
        ]));
        const r = await segdImport(['--data', dir, f]);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /3 lines read, 2 applied, 0 duplicates, 0 skipped.*stopped at line 3/);
        assert.match(r.stderr, /stop\.ndjson:3: missing_field \(userId\)/);
        const s = await startSegd(t, { dataDir: dir });
        assert.deepEqual((await s.person('st-1')).event_counts, { a: 1, b: 1 });
        await s.stop();
    });

    it('--on-error=skip applies every good line and reports each bad one with its line number, exits 1', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        const f = writeFile(files, 'skip.ndjson', ndjson([
            { type: 'identify', userId: 'sk-1', traits: { n: 1 } },
            '{"type":"track", "userId": "sk-1", "event": }',
            { type: 'identify', userId: 'sk-1', traits: { n: 'not a number' } },
            { type: 'track', userId: 'sk-1', event: 'ok' },
            { type: 'nope', userId: 'sk-1' },
            { type: 'track', userId: 'sk-1', event: 'ok2' },
        ]));
        const r = await segdImport(['--data', dir, '--on-error=skip', f]);
        assert.equal(r.code, 1);
        assert.match(r.stdout, /6 lines read, 3 applied, 0 duplicates, 3 skipped/);
        assert.match(r.stderr, /skip\.ndjson:2: invalid_json/);
        assert.match(r.stderr, /skip\.ndjson:3: type_conflict \(n\)/);
        assert.match(r.stderr, /skip\.ndjson:5: invalid_type/);
        const s = await startSegd(t, { dataDir: dir });
        const p = await s.person('sk-1');
        assert.equal(p.attributes.n, 1);
        assert.deepEqual(p.event_counts, { ok: 1, ok2: 1 });
        await s.stop();
    });

    it('imports CSV people (typed from the text, tags as a;b or JSON) and CSV events; the same files again are duplicates', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        const people = writeFile(files, 'people.csv',
            '\ufeffuser_id, email ,plan,seats,vip,renews_at,tags\n' +
            'cp-1,cp1@ex.com,pro,3,true,2025-01-01T00:00:00Z,a;b; c \n' +
            'cp-2,,"free, for now",,false,,"[""x"",""y""]"\n' +
            '"cp-3","multi\nline@ex.com",team,10,false,,\n');
        const events = writeFile(files, 'events.csv',
            'event,timestamp,user_id,properties\n' +
            'purchase,2024-02-01T10:00:00Z,cp-1,"{""amount"": 5, ""sku"": ""A""}"\n' +
            'purchase,2024-02-02T10:00:00+01:00,cp-1,\n' +
            'login,,cp-2,\n');
        const r = await segdImport(['--data', dir, people, events]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /people\.csv: 3 lines read, 3 applied/);
        assert.match(r.stdout, /events\.csv: 3 lines read, 3 applied/);
        const again = await segdImport(['--data', dir, people, events]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /people\.csv: 3 lines read, 0 applied, 3 duplicates/);
        assert.match(again.stdout, /events\.csv: 3 lines read, 0 applied, 3 duplicates/);

        const s = await startSegd(t, { dataDir: dir });
        const p1 = await s.person('cp-1');
        assert.equal(p1.attributes.email, 'cp1@ex.com');
        assert.equal(p1.attributes.plan, 'pro');
        assert.equal(p1.attributes.seats, 3);
        assert.equal(p1.attributes.vip, true);
        assert.equal(p1.attributes.renews_at, '2025-01-01T00:00:00.000Z');
        assert.deepEqual(p1.tags, ['a', 'b', 'c']);
        assert.deepEqual(p1.events.map((e) => [e.event, e.timestamp, e.properties]), [
            ['purchase', '2024-02-02T09:00:00.000Z', {}],
            ['purchase', '2024-02-01T10:00:00.000Z', { amount: 5, sku: 'A' }],
        ]);
        const p2 = await s.person('cp-2');
        assert.equal(p2.attributes.plan, 'free, for now');
        assert.equal(p2.attributes.vip, false);
        assert.equal('seats' in p2.attributes, false, 'an empty cell is absent');
        assert.deepEqual(p2.tags, ['x', 'y']);
        assert.deepEqual(Object.keys(p2.event_counts), ['login']);
        assert.equal((await s.person('cp-3')).attributes.email, 'multi\nline@ex.com');
        const sc = (await s.get('/api/schema')).json;
        const type = (n) => sc.attributes.find((a) => a.name === n)?.type;
        assert.equal(type('seats'), 'number');
        assert.equal(type('vip'), 'boolean');
        assert.equal(type('renews_at'), 'datetime');
        assert.equal(type('plan'), 'string');
        await s.stop();
    });

    it('CSV text that is no JSON number (01067, 0x1A, 1e400, " 7") stays a string', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        const f = writeFile(files, 'numbers.csv', 'user_id,zip,code,huge,spaced,real\nnum-1,01067,0x1A,1e400," 7",-2.5e3\n');
        const r = await segdImport(['--data', dir, f]);
        assert.equal(r.code, 0, r.stderr);
        const s = await startSegd(t, { dataDir: dir });
        const a = (await s.person('num-1')).attributes;
        assert.equal(a.zip, '01067', 'a zip code keeps its leading zero');
        assert.equal(a.code, '0x1A');
        assert.equal(a.huge, '1e400');
        assert.equal(a.spaced, ' 7');
        assert.equal(a.real, -2500, 'a JSON number is a number');
        await s.stop();
    });

    it('a declared string attribute keeps CSV text such as 42 as a string', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        const s = await startSegd(t, { dataDir: dir });
        assert.equal((await s.post('/api/attributes', { name: 'postcode', type: 'string' })).status, 201);
        await s.stop();
        const f = writeFile(files, 'declared.csv', 'user_id,postcode\ncd-1,01067\n');
        const r = await segdImport(['--data', dir, f]);
        assert.equal(r.code, 0, r.stderr);
        await s.restart();
        assert.equal((await s.person('cd-1')).attributes.postcode, '01067');
        await s.stop();
    });

    it('a CSV header with a column segd sets (id, anonymous_ids, last_seen) or without user_id is refused', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        for (const [name, text] of [['last.csv', 'user_id,last_seen\nx,2024-01-01T00:00:00Z\n'], ['noid.csv', 'email,plan\na@ex.com,pro\n']]) {
            const f = writeFile(files, name, text);
            const r = await segdImport(['--data', dir, f]);
            assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
            assert.match(r.stderr, /invalid_csv_header/, name);
        }
    });

    it('reads standard input with --format; usage errors exit 2', async (t) => {
        const dir = makeDataDir();
        t.after(() => removeDataDir(dir));
        const r = await segdImport(['--data', dir, '--format', 'ndjson', '-'], { input: ndjson([{ type: 'track', userId: 'in-1', event: 'piped' }]) });
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /1 lines read, 1 applied/);
        const f = writeFile(files, 'x.ndjson', ndjson([{ type: 'track', userId: 'u', event: 'e' }]));
        const noext = writeFile(files, 'data.txt', ndjson([{ type: 'track', userId: 'u', event: 'e' }]));
        for (const args of [[f], ['--data', dir, '--server', 'http://127.0.0.1:1', f], ['--data', dir], ['--data', dir, '--on-error=maybe', f],
            ['--data', dir, '--format', 'xml', f], ['--data', dir, noext], ['--data', dir, '--bogus', f]]) {
            const u = await segdImport(args);
            assert.equal(u.code, 2, `segd import ${args.join(' ')}: ${u.stderr}`);
            assert.ok(u.stderr.length > 10);
        }
    });

    it('refuses a data directory a running server owns, pointing at --server', async (t) => {
        const s = await startSegd(t);
        const f = writeFile(files, 'locked.ndjson', ndjson([{ type: 'track', userId: 'lk-1', event: 'e' }]));
        const r = await segdImport(['--data', s.dataDir, f]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /--server/);
        assert.equal((await s.get('/api/people/lk-1')).status, 404);
        await s.stop();
    });
});

describe('POST /api/import and segd import --server', () => {
    let s, files, routed = false;
    before(async () => {
        files = makeDataDir('segd-e2e-files-');
        s = await startSegd(null, { env: { SEGD_MASTER_KEY: KEY }, args: ['--max-import-bytes', '4096'] });
        const probe = await s.post('/api/import?format=ndjson', '', { bearer: KEY });
        routed = !(probe.status === 404 && probe.json?.error?.code === 'not_found');
    });
    after(async () => {
        if (s) await s.close();
        removeDataDir(files);
    });
    const post = (q, body, opts = {}) => s.request('POST', `/api/import${q}`, { body, bearer: KEY, contentType: 'application/x-ndjson', ...opts });

    it('POST /api/import with NDJSON answers 200 with the summary; the data is there at once', async (t) => {
        if (!routed) return t.skip('POST /api/import is not routed yet');
        const body = ndjson([
            { type: 'identify', userId: 'ai-1', traits: { plan: 'pro' }, messageId: 'ai-m1' },
            { type: 'track', userId: 'ai-1', event: 'imported', messageId: 'ai-m2', timestamp: '2024-01-01T00:00:00Z' },
        ]);
        const r = await post('?format=ndjson', body);
        assert.equal(r.status, 200, r.text);
        const j = r.json;
        assert.equal(j.lines_read, 2);
        assert.equal(j.applied, 2);
        assert.equal(j.duplicates, 0);
        assert.equal(j.skipped, 0);
        assert.equal(j.stopped, false);
        assert.equal(j.stop_line, null);
        assert.deepEqual(j.errors, []);
        assert.equal(typeof j.elapsed_ms, 'number');
        const p = await s.person('ai-1', { bearer: KEY });
        assert.equal(p.attributes.plan, 'pro');
        assert.deepEqual(p.event_counts, { imported: 1 });
        const again = await post('?format=ndjson', body);
        assert.equal(again.json.applied, 0);
        assert.equal(again.json.duplicates, 2);
    });

    it('POST /api/import?on_error=skip lists the bad lines; on_error=stop stops at the first', async (t) => {
        if (!routed) return t.skip('POST /api/import is not routed yet');
        const body = ndjson([
            { type: 'track', userId: 'ai-2', event: 'a' },
            { type: 'track', event: 'no-user' },
            { type: 'track', userId: 'ai-2', event: 'b' },
        ]);
        const sk = await post('?format=ndjson&on_error=skip', body);
        assert.equal(sk.status, 200, sk.text);
        assert.equal(sk.json.applied, 2);
        assert.equal(sk.json.skipped, 1);
        assert.equal(sk.json.stopped, false);
        assert.deepEqual(sk.json.errors.map((e) => [e.line, e.code, e.field]), [[2, 'missing_field', 'userId']]);
        const st = await post('?format=ndjson&on_error=stop&first_line=10', body.replace(/ai-2/g, 'ai-3'));
        assert.equal(st.status, 200, st.text);
        assert.equal(st.json.applied, 1);
        assert.equal(st.json.stopped, true);
        assert.equal(st.json.stop_line, 11);
        assert.deepEqual((await s.person('ai-3', { bearer: KEY })).event_counts, { a: 1 });
    });

    it('POST /api/import with CSV (format from ?file=) and bad parameters', async (t) => {
        if (!routed) return t.skip('POST /api/import is not routed yet');
        const csv = 'user_id,plan\nai-4,team\n';
        const r = await post('?file=people.csv', csv, { contentType: 'text/csv' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.applied, 1);
        assert.equal((await s.person('ai-4', { bearer: KEY })).attributes.plan, 'team');
        for (const q of ['', '?format=xml', '?format=ndjson&on_error=maybe', '?format=ndjson&first_line=-3', '?format=csv&file=a/b.csv']) {
            const b = await post(q, csv);
            assert.equal(b.status, 400, `${q}: ${b.text}`);
            assert.equal(errorOf(b).code, 'invalid_parameter', q);
        }
    });

    it('POST /api/import needs the Bearer key and refuses bodies over --max-import-bytes', async (t) => {
        if (!routed) return t.skip('POST /api/import is not routed yet');
        const r = await s.request('POST', '/api/import?format=ndjson', { body: ndjson([{ type: 'track', userId: 'x', event: 'e' }]), contentType: 'application/x-ndjson' });
        assert.equal(r.status, 401);
        assert.match(r.headers.get('www-authenticate'), /^Bearer/);
        const big = ndjson(Array.from({ length: 80 }, (_, i) => ({ type: 'track', userId: 'ai-big', event: 'e', properties: { i } })));
        assert.ok(big.length > 4096);
        let status;
        try { status = (await post('?format=ndjson', big)).status; } catch { status = 'reset'; }
        assert.ok(status === 413 || status === 'reset', `got ${status}`);
        assert.equal((await s.get('/api/people/ai-big', { bearer: KEY })).status, 404);
    });

    it('segd import --server sends a file in chunks of whole lines; line numbers, dedup and the key work across them', async (t) => {
        if (!routed) return t.skip('POST /api/import is not routed yet');
        const lines = Array.from({ length: 300 }, (_, i) => ({ type: 'track', userId: `srv-${i % 7}`, event: 'srv_import', properties: { i }, messageId: `srv-${i}` }));
        lines.splice(150, 0, { type: 'track', event: 'bad' });
        const f = writeFile(files, 'server.ndjson', ndjson(lines));
        const r = await segdImport(['--server', s.url, '--key', KEY, '--on-error=skip', '--chunk-bytes', '3000', f]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stdout, /301 lines read, 300 applied, 0 duplicates, 1 skipped/);
        assert.match(r.stderr, /server\.ndjson:151: missing_field/);
        let total = 0;
        for (let u = 0; u < 7; u++) total += (await s.person(`srv-${u}`, { bearer: KEY, eventsLimit: 0 })).event_counts.srv_import;
        assert.equal(total, 300);
        const again = await segdImport(['--server', s.url, '--key', KEY, '--on-error=skip', f]);
        assert.match(again.stdout, /301 lines read, 0 applied, 300 duplicates, 1 skipped/);
        const nokey = await segdImport(['--server', s.url, f]);
        assert.equal(nokey.code, 1);
        assert.match(nokey.stderr, /401/);
    });

    it('segd import --server halves its chunks when the server answers 413', async (t) => {
        if (!routed) return t.skip('POST /api/import is not routed yet');
        const big = await startSegd(t, { args: ['--max-import-bytes', '100000'] });
        const lines = Array.from({ length: 4000 }, (_, i) => ({ type: 'track', userId: `half-${i % 10}`, event: 'half', properties: { i, pad: 'x'.repeat(40) } }));
        const f = writeFile(files, 'half.ndjson', ndjson(lines));
        assert.ok(fs.statSync(f).size > 300000);
        const r = await segdImport(['--server', big.url, '--chunk-bytes', '300000', f]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /4000 lines read, 4000 applied, 0 duplicates, 0 skipped/);
        let total = 0;
        for (let u = 0; u < 10; u++) total += (await big.person(`half-${u}`, { eventsLimit: 0 })).event_counts.half;
        assert.equal(total, 4000);
        const m = await big.metrics();
        assert.match(m, /segd_http_requests_total\{route="POST \/api\/import",code="4xx"\} [1-9]/, 'some chunks were refused with 413');
        assert.deepEqual(await big.stop(), { code: 0, signal: null });
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});
