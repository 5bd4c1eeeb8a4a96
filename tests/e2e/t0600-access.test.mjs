// t0600 - access with SEGD_MASTER_KEY: /api and /metrics need Bearer, /v1 needs the key
// as the Basic user (or writeKey in the body), /livez and /readyz are public; without a
// key segd refuses to listen anywhere but loopback.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSegd, startSegdExpectFailure, basicAuth, errorOf } from './lib/segd.mjs';

const KEY = 'k3y-For-e2e-0123456789abcdef';

function expect401(r, scheme) {
    assert.equal(r.status, 401, r.text);
    assert.equal(errorOf(r).code, 'unauthorized');
    const challenge = r.headers.get('www-authenticate');
    assert.ok(challenge, 'WWW-Authenticate is set');
    assert.match(challenge, new RegExp(`^${scheme}\\b`, 'i'));
}

describe('access with SEGD_MASTER_KEY', () => {
    let s;
    before(async () => { s = await startSegd(null, { env: { SEGD_MASTER_KEY: KEY } }); });
    after(async () => { if (s) await s.close(); });

    it('/livez and /readyz are public', async () => {
        const l = await s.get('/livez');
        assert.equal(l.status, 200);
        const r = await s.get('/readyz');
        assert.equal(r.status, 200);
    });

    it('/api without credentials, with a wrong key, or with Basic -> 401 with WWW-Authenticate: Bearer', async () => {
        const calls = [
            ['GET', '/api/schema'], ['GET', '/api/people/u1'], ['POST', '/api/people', { user_id: 'u1' }],
            ['PATCH', '/api/people/u1', { attributes: {} }], ['DELETE', '/api/people/u1'], ['GET', '/api/events?user_id=u1'],
            ['POST', '/api/attributes', { name: 'a', type: 'string' }], ['DELETE', '/api/attributes/a'], ['GET', '/metrics'],
        ];
        for (const [method, p, body] of calls) {
            expect401(await s.request(method, p, { body }), 'Bearer');
            expect401(await s.request(method, p, { body, bearer: KEY + 'x' }), 'Bearer');
            expect401(await s.request(method, p, { body, bearer: KEY.slice(0, -1) }), 'Bearer');
            expect401(await s.request(method, p, { body, basic: KEY }), 'Bearer');
            expect401(await s.request(method, p, { body, headers: { Authorization: KEY } }), 'Bearer');
        }
        assert.equal((await s.get('/api/people/u1', { bearer: KEY })).status, 404, 'the POST without a key created nobody');
    });

    it('/api and /metrics with Authorization: Bearer KEY work', async () => {
        const r = await s.post('/api/people', { user_id: 'acc-1', attributes: { plan: 'pro' } }, { bearer: KEY });
        assert.equal(r.status, 201);
        assert.equal((await s.get('/api/people/acc-1', { bearer: KEY })).status, 200);
        assert.equal((await s.get('/api/schema', { bearer: KEY })).status, 200);
        const m = await s.get('/metrics', { bearer: KEY });
        assert.equal(m.status, 200);
        assert.match(m.text, /segd_people 1\n/);
    });

    it('/v1 without credentials or with a wrong key -> 401 with WWW-Authenticate: Basic; nothing applied', async () => {
        const msg = { userId: 'acc-2', event: 'e' };
        expect401(await s.post('/v1/track', msg), 'Basic');
        expect401(await s.post('/v1/track', msg, { basic: 'wrong' }), 'Basic');
        expect401(await s.post('/v1/track', msg, { headers: { Authorization: basicAuth('', KEY) } }), 'Basic');
        expect401(await s.post('/v1/track', msg, { bearer: KEY }), 'Basic');
        expect401(await s.post('/v1/track', { ...msg, writeKey: 'wrong' }), 'Basic');
        expect401(await s.post('/v1/track', { ...msg, writeKey: KEY }, { basic: 'wrong' }), 'Basic');
        expect401(await s.post('/v1/batch', { batch: [{ type: 'track', ...msg }] }), 'Basic');
        for (const kind of ['identify', 'page', 'screen', 'group', 'alias']) {
            expect401(await s.post(`/v1/${kind}`, { userId: 'acc-2', previousId: 'x', groupId: 'g' }), 'Basic');
        }
        assert.equal((await s.get('/api/people/acc-2', { bearer: KEY })).status, 404);
    });

    it('/v1 with KEY as the Basic user (empty password) works, on every endpoint', async () => {
        const o = { basic: KEY };
        await s.track('identify', { userId: 'acc-3', traits: { plan: 'pro' } }, o);
        await s.track('track', { userId: 'acc-3', event: 'e' }, o);
        await s.track('page', { userId: 'acc-3' }, o);
        await s.track('screen', { userId: 'acc-3', name: 'S' }, o);
        await s.track('group', { userId: 'acc-3', groupId: 'g' }, o);
        await s.track('alias', { previousId: 'acc-3', userId: 'acc-3b' }, o);
        await s.track('batch', { batch: [{ type: 'track', userId: 'acc-3b', event: 'b' }] }, o);
        const p = await s.person('acc-3b', { bearer: KEY });
        assert.deepEqual(p.event_counts, { e: 1, page_view: 1, screen_view: 1, b: 1 });
    });

    it('/v1 with "writeKey": KEY in the body works (single messages and batches)', async () => {
        await s.track('track', { userId: 'acc-4', event: 'wk', writeKey: KEY });
        await s.track('batch', { writeKey: KEY, batch: [{ type: 'track', userId: 'acc-4', event: 'wk' }] });
        assert.deepEqual((await s.person('acc-4', { bearer: KEY })).event_counts, { wk: 2 });
    });

    it('the key is never written to the data directory or printed', async () => {
        const files = fs.readdirSync(s.dataDir);
        assert.ok(files.length > 0);
        for (const f of files) {
            const full = path.join(s.dataDir, f);
            if (!fs.statSync(full).isFile()) continue;
            assert.equal(fs.readFileSync(full).includes(KEY), false, `${f} holds the key`);
        }
        assert.equal(s.stdout().includes(KEY), false);
        assert.equal(s.stderr().includes(KEY), false);
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});

describe('listening beyond loopback', () => {
    it('without a key, serve refuses --listen 0.0.0.0:0 (non-zero exit and a message naming SEGD_MASTER_KEY)', async () => {
        for (const listen of ['0.0.0.0:0', '[::]:0']) {
            const r = await startSegdExpectFailure({ listen });
            assert.notEqual(r.code, 0, listen);
            assert.equal(r.signal, null);
            assert.match(r.stderr, /SEGD_MASTER_KEY/);
            assert.ok(r.stderr.includes(listen), `the message names ${listen}: ${r.stderr}`);
            assert.doesNotMatch(r.stdout, /listening on/);
        }
    });

    it('without a key, loopback addresses are fine', async (t) => {
        const s = await startSegd(t, { listen: '127.0.0.1:0' });
        assert.equal((await s.get('/api/schema')).status, 200);
        assert.equal((await s.post('/v1/track', { userId: 'u', event: 'e' })).status, 200);
        assert.deepEqual(await s.stop(), { code: 0, signal: null });
    });

    it('with a key, --listen 0.0.0.0:0 starts and still asks for the key', async (t) => {
        const s = await startSegd(t, { listen: '0.0.0.0:0', env: { SEGD_MASTER_KEY: KEY } });
        s.url = `http://127.0.0.1:${s.port}`;
        assert.equal((await s.get('/livez')).status, 200);
        expect401(await s.get('/api/schema'), 'Bearer');
        assert.equal((await s.get('/api/schema', { bearer: KEY })).status, 200);
        assert.deepEqual(await s.stop(), { code: 0, signal: null });
    });
});
