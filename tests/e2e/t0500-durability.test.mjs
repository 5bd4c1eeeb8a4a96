// t0500 - durability: every acknowledged write survives kill -9; SIGTERM finishes
// in-flight requests and exits 0; the data directory lock keeps a second segd out;
// erasure, messageId dedup and the schema survive restarts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, startSegdExpectFailure } from './lib/segd.mjs';

const CLIENTS = 20;
const PER_CLIENT = 25;

describe('durability', () => {
    let s;
    before(async () => { s = await startSegd(null); });
    after(async () => { if (s) await s.close(); });

    it(`${CLIENTS} parallel clients x ${PER_CLIENT} acknowledged writes all survive kill -9`, async () => {
        const clients = Array.from({ length: CLIENTS }, (_, c) => c);
        await Promise.all(clients.map(async (c) => {
            for (let i = 0; i < PER_CLIENT; i++) {
                // mostly events, every fifth write an identify, one alias per client
                let r;
                if (i % 5 === 4) {
                    r = await s.post('/v1/identify', { userId: `dur-${c}`, traits: { [`step`]: i, [`c${c}_last`]: `v${i}` } });
                } else {
                    r = await s.post('/v1/track', { userId: `dur-${c}`, event: 'dur_write', properties: { c, i }, messageId: `dur-${c}-${i}` });
                }
                assert.equal(r.status, 200, `client ${c} write ${i}: ${r.text}`);
            }
        }));
        await s.kill9();
        assert.equal(s.exit.signal, 'SIGKILL');
        await s.restart();
        assert.equal((await s.get('/readyz')).status, 200);
        for (const c of clients) {
            const p = await s.person(`dur-${c}`, { eventsLimit: 0 });
            const tracked = Array.from({ length: PER_CLIENT }, (_, i) => i).filter((i) => i % 5 !== 4);
            assert.deepEqual(p.event_counts, { dur_write: tracked.length }, `client ${c}`);
            assert.equal(p.attributes.step, PER_CLIENT - 1, `client ${c}`);
            assert.equal(p.attributes[`c${c}_last`], `v${PER_CLIENT - 1}`);
            const evs = await s.allEvents({ user_id: `dur-${c}` }, { limit: 7 });
            assert.deepEqual(evs.map((e) => e.properties.i).sort((a, b) => a - b), tracked, `client ${c}`);
        }
        // the message ids were kept as well: resending is a no-op
        await s.track('track', { userId: 'dur-0', event: 'dur_write', properties: { c: 0, i: 0 }, messageId: 'dur-0-0' });
        assert.equal((await s.person('dur-0', { eventsLimit: 0 })).event_counts.dur_write, 20);
    });

    it('kill -9 during a stream of writes: every write that was answered 200 is there after the restart', async () => {
        const acked = new Set();
        let stop = false;
        const clients = Array.from({ length: 10 }, (_, c) => c);
        const running = Promise.all(clients.map(async (c) => {
            for (let i = 0; !stop && i < 1000; i++) {
                try {
                    const r = await s.post('/v1/batch', {
                        batch: [
                            { type: 'track', userId: `kill-${c}`, event: 'kill_write', properties: { i } },
                            { type: 'identify', userId: `kill-${c}`, traits: { last_i: i } },
                        ],
                    });
                    if (r.status === 200) acked.add(`${c}:${i}`);
                } catch {
                    return;    // the server is gone
                }
            }
        }));
        await new Promise((r) => setTimeout(r, 400));
        await s.kill9();
        stop = true;
        await running;
        assert.ok(acked.size > 0, 'some writes were acknowledged before the kill');
        await s.restart();
        for (const c of clients) {
            const mine = [...acked].filter((k) => k.startsWith(`${c}:`)).map((k) => Number(k.split(':')[1]));
            if (mine.length === 0) continue;
            const evs = await s.allEvents({ user_id: `kill-${c}` }, { limit: 1000 });
            const have = new Set(evs.map((e) => e.properties.i));
            for (const i of mine) assert.ok(have.has(i), `client ${c} write ${i} was acknowledged but is missing`);
            // a batch is all or nothing: the identify of the newest event is there as well
            const p = await s.person(`kill-${c}`, { eventsLimit: 0 });
            assert.equal(p.attributes.last_i, Math.max(...have), `client ${c}: event and trait of one batch`);
        }
    });

    it('SIGTERM lets in-flight requests finish, exits 0, and what was answered 200 is kept', async () => {
        const acked = [];
        const sent = [];
        for (let i = 0; i < 30; i++) {
            sent.push(s.post('/v1/track', { userId: 'term-1', event: 'term_write', properties: { i } })
                .then((r) => { if (r.status === 200) acked.push(i); else assert.equal(r.status, 503, r.text); })
                .catch(() => { /* refused after the listener closed */ }));
        }
        await new Promise((r) => setTimeout(r, 30));
        const exit = await s.stop('SIGTERM');
        await Promise.all(sent);
        assert.deepEqual(exit, { code: 0, signal: null });
        assert.match(s.stderr(), /SIGTERM/);
        await s.restart();
        if (acked.length) {
            const evs = await s.allEvents({ user_id: 'term-1' }, { limit: 1000 });
            const have = new Set(evs.map((e) => e.properties.i));
            for (const i of acked) assert.ok(have.has(i), `write ${i} was acknowledged but is missing`);
        }
    });

    it('SIGINT also exits 0', async () => {
        const exit = await s.stop('SIGINT');
        assert.deepEqual(exit, { code: 0, signal: null });
        await s.restart();
    });

    it('a second segd on the same data directory refuses to start with a clear message; the first keeps serving', async () => {
        const r = await startSegdExpectFailure({ dataDir: s.dataDir });
        assert.notEqual(r.code, 0);
        assert.equal(r.signal, null);
        assert.match(r.stderr, /another segd/i);
        assert.ok(r.stderr.includes(s.dataDir), `the message names the directory: ${r.stderr}`);
        assert.doesNotMatch(r.stdout, /listening on/);
        assert.equal((await s.get('/readyz')).status, 200);
        await s.track('track', { userId: 'lock-1', event: 'still_here' });
    });

    it('erasure survives kill -9 and restart: the person and their events stay gone', async () => {
        await s.track('identify', { userId: 'gone-1', anonymousId: 'gone-1-anon', traits: { email: 'gone@ex.com', plan: 'pro' } });
        for (let i = 0; i < 3; i++) await s.track('track', { userId: 'gone-1', event: 'gone_ev', properties: { i } });
        await s.track('track', { userId: 'stay-1', event: 'gone_ev' });
        assert.equal((await s.del('/api/people/gone-1')).status, 200);
        await s.kill9();
        await s.restart();
        for (const p of ['/api/people/gone-1', '/api/people/gone-1-anon?by=anonymous_id', '/api/people/gone@ex.com?by=email', '/api/events?user_id=gone-1']) {
            const r = await s.get(p);
            assert.equal(r.status, 404, p);
            assert.equal(r.json.error.code, 'person_not_found');
        }
        const et = (await s.get('/api/schema')).json.event_types.find((t) => t.name === 'gone_ev');
        assert.equal(et.events, 1, 'only the other person\'s event is left');
        await s.stop('SIGTERM');
        await s.restart();
        assert.equal((await s.get('/api/people/gone-1')).status, 404);
    });

    it('the schema (declared and inferred types, event types, properties) survives a restart', async () => {
        assert.equal((await s.post('/api/attributes', { name: 'dur_declared', type: 'string' })).status, 201);
        await s.track('identify', { userId: 'sch-1', traits: { dur_declared: '2024-01-01T00:00:00Z', dur_num: 1, dur_when: '2024-01-01T00:00:00Z' } });
        await s.track('track', { userId: 'sch-1', event: 'dur_typed', properties: { a: 1, b: 'x', c: true } });
        const before = (await s.get('/api/schema')).json;
        await s.kill9();
        await s.restart();
        const after = (await s.get('/api/schema')).json;
        assert.deepEqual(after, before);
        const p = await s.person('sch-1');
        assert.equal(p.attributes.dur_declared, '2024-01-01T00:00:00Z', 'a declared string stays the text as sent');
        assert.equal(p.attributes.dur_when, '2024-01-01T00:00:00.000Z');
        const bad = await s.post('/v1/identify', { userId: 'sch-1', traits: { dur_num: 'one' } });
        assert.equal(bad.status, 422);
        assert.equal(bad.json.error.code, 'type_conflict');
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});
