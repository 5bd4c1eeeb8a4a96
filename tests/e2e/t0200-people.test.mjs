// t0200 - the people API: upsert, GET by every key kind, PATCH (attributes, tags add /
// remove, last_seen untouched), DELETE (erasure), GET /api/events cursor paging.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, metricValue, ID_RE } from './lib/segd.mjs';

const PROFILE_KEYS = ['anonymous_ids', 'attributes', 'created_at', 'event_counts', 'events', 'id', 'last_seen', 'next_cursor', 'segment_log', 'segments', 'tags', 'user_id'];

describe('people API', () => {
    let s;
    before(async () => { s = await startSegd(null); });
    after(async () => { if (s) await s.close(); });

    it('POST /api/people creates (201 with the profile), then updates (200)', async () => {
        const r1 = await s.post('/api/people', { user_id: 'rp-1', attributes: { email: 'Bob@Example.COM', plan: 'pro', seats: 3 }, tags: ['vip', 'beta'] });
        assert.equal(r1.status, 201);
        const p1 = r1.json;
        assert.deepEqual(Object.keys(p1).sort(), PROFILE_KEYS);
        assert.match(p1.id, ID_RE);
        assert.equal(p1.user_id, 'rp-1');
        assert.deepEqual(p1.tags, ['vip', 'beta']);
        assert.equal(p1.attributes.email, 'Bob@Example.COM');
        assert.equal(p1.attributes.plan, 'pro');
        assert.equal(p1.attributes.seats, 3);
        assert.deepEqual(p1.events, []);

        const r2 = await s.post('/api/people', { user_id: 'rp-1', attributes: { plan: 'team' }, tags: ['gold'] });
        assert.equal(r2.status, 200);
        assert.equal(r2.json.id, p1.id);
        assert.equal(r2.json.attributes.plan, 'team');
        assert.equal(r2.json.attributes.seats, 3, 'attributes not sent stay');
        assert.deepEqual(r2.json.tags, ['gold'], 'tags are replaced');

        const g = await s.get('/api/people/rp-1');
        assert.equal(g.status, 200);
        assert.deepEqual(g.json, r2.json);
    });

    it('POST /api/people with anonymous_id creates an anonymous person', async () => {
        const r = await s.post('/api/people', { anonymous_id: 'rp-anon-1', attributes: { source: 'ads' } });
        assert.equal(r.status, 201);
        assert.equal(r.json.user_id, null);
        assert.deepEqual(r.json.anonymous_ids, ['rp-anon-1']);
        const p = await s.person('rp-anon-1', { by: 'anonymous_id' });
        assert.equal(p.id, r.json.id);
        assert.equal(p.attributes.source, 'ads');
    });

    it('GET /api/people/{key} by user_id (default), anonymous_id, email (case-insensitive) and id', async () => {
        await s.track('identify', { userId: 'rp-2', anonymousId: 'rp-2-anon', traits: { email: 'Carla.Mixed@Example.org' } });
        const p = await s.person('rp-2');
        assert.equal((await s.person('rp-2', { by: 'user_id' })).id, p.id);
        assert.equal((await s.person('rp-2-anon', { by: 'anonymous_id' })).id, p.id);
        assert.equal((await s.person('carla.mixed@example.org', { by: 'email' })).id, p.id);
        assert.equal((await s.person('CARLA.MIXED@EXAMPLE.ORG', { by: 'email' })).id, p.id);
        assert.equal((await s.person(p.id, { by: 'id' })).user_id, 'rp-2');
        // keys with characters that need escaping in a path
        await s.track('identify', { userId: 'user with spaces ü?#&=+', traits: { x: 1 } });
        assert.equal((await s.person('user with spaces ü?#&=+')).user_id, 'user with spaces ü?#&=+');
    });

    it('a key with a slash, sent as %2F, names the person (the key is one path segment)', async () => {
        await s.track('identify', { userId: 'org/42', traits: { x: 1 } });
        const r = await s.get('/api/people/org%2F42');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.user_id, 'org/42');
    });

    it('PATCH sets and clears attributes, adds and removes tags, answers 200 with the profile', async () => {
        await s.post('/api/people', { user_id: 'rp-3', attributes: { plan: 'pro', color: 'red' }, tags: ['a', 'b'] });
        const r = await s.patch('/api/people/rp-3', { attributes: { plan: 'team', color: null, score: 7.5 }, tags: { add: ['c', 'a'], remove: ['b', 'zz'] } });
        assert.equal(r.status, 200);
        assert.equal(r.json.attributes.plan, 'team');
        assert.equal('color' in r.json.attributes, false);
        assert.equal(r.json.attributes.score, 7.5);
        assert.deepEqual(r.json.tags, ['a', 'c']);
        assert.deepEqual(await s.person('rp-3'), r.json);
        const r2 = await s.patch('/api/people/rp-3', { tags: { remove: ['a', 'c'] } });
        assert.equal(r2.status, 200);
        assert.deepEqual(r2.json.tags, []);
        const r3 = await s.patch('/api/people/rp-3', { tags: { add: ['x'] } });
        assert.deepEqual(r3.json.tags, ['x']);
    });

    it('PATCH by id and by email; a PATCH that changes the email is found by the new one', async () => {
        const p = (await s.post('/api/people', { user_id: 'rp-4', attributes: { email: 'old@ex.com' } })).json;
        const r = await s.patch(`/api/people/${p.id}?by=id`, { attributes: { plan: 'x' } });
        assert.equal(r.status, 200);
        assert.equal(r.json.attributes.plan, 'x');
        const r2 = await s.patch('/api/people/OLD@ex.com?by=email', { attributes: { email: 'new@ex.com' } });
        assert.equal(r2.status, 200);
        assert.equal(r2.json.id, p.id);
        assert.equal(r2.json.attributes.email, 'new@ex.com');
        assert.equal((await s.person('new@ex.com', { by: 'email' })).id, p.id);
        assert.equal((await s.get('/api/people/old@ex.com?by=email')).status, 404);
    });

    it('a PATCH does not move last_seen (or created_at)', async () => {
        await s.track('track', { userId: 'rp-5', event: 'e', timestamp: '2024-01-01T00:00:00Z' });
        const before = await s.person('rp-5');
        assert.equal(before.last_seen, '2024-01-01T00:00:00.000Z');
        await s.patch('/api/people/rp-5', { attributes: { plan: 'pro' }, tags: { add: ['t'] } });
        const p = await s.person('rp-5');
        assert.equal(p.attributes.plan, 'pro');
        assert.equal(p.last_seen, '2024-01-01T00:00:00.000Z');
        assert.equal(p.created_at, '2024-01-01T00:00:00.000Z');
    });

    it('PATCH created_at pins it: older messages no longer move it', async () => {
        await s.track('track', { userId: 'rp-6', event: 'e', timestamp: '2024-02-01T00:00:00Z' });
        await s.patch('/api/people/rp-6', { attributes: { created_at: '2023-12-24T18:00:00Z' } });
        await s.track('track', { userId: 'rp-6', event: 'e', timestamp: '2023-01-01T00:00:00Z' });
        const p = await s.person('rp-6');
        assert.equal(p.created_at, '2023-12-24T18:00:00.000Z');
        assert.equal(p.last_seen, '2024-02-01T00:00:00.000Z');
    });

    it('events_limit bounds the profile\'s events and gives a cursor to page on with /api/events', async () => {
        for (let i = 0; i < 25; i++) {
            await s.track('track', { userId: 'rp-7', event: 'view', properties: { n: i }, timestamp: new Date(Date.UTC(2024, 0, 1, 0, i)).toISOString() });
        }
        const p = await s.person('rp-7');
        assert.equal(p.events.length, 20, 'the default events_limit is 20');
        assert.deepEqual(p.events.map((e) => e.properties.n), Array.from({ length: 20 }, (_, i) => 24 - i));
        assert.equal(typeof p.next_cursor, 'string');
        assert.deepEqual(p.event_counts, { view: 25 });
        const rest = await s.get(`/api/events?user_id=rp-7&cursor=${encodeURIComponent(p.next_cursor)}`);
        assert.equal(rest.status, 200);
        assert.deepEqual(rest.json.events.map((e) => e.properties.n), [4, 3, 2, 1, 0]);
        assert.equal(rest.json.next_cursor, null);
        const p3 = await s.person('rp-7', { eventsLimit: 3 });
        assert.deepEqual(p3.events.map((e) => e.properties.n), [24, 23, 22]);
        const all = await s.person('rp-7', { eventsLimit: 1000 });
        assert.equal(all.events.length, 25);
        assert.equal(all.next_cursor, null);
    });

    it('GET /api/events pages each event exactly once, newest first, also with equal timestamps and events arriving between pages', async () => {
        // 60 events: pairs of types, many sharing one timestamp
        const batch = [];
        for (let i = 0; i < 60; i++) {
            const ts = new Date(Date.UTC(2024, 5, 1, 0, Math.floor(i / 10))).toISOString();
            batch.push({ type: 'track', userId: 'pg-all', event: i % 2 ? 'odd' : 'even', properties: { n: i }, timestamp: ts });
        }
        assert.equal((await s.post('/v1/batch', { batch })).status, 200);
        const full = await s.get('/api/events?user_id=pg-all&limit=1000');
        assert.equal(full.json.events.length, 60);
        assert.equal(full.json.next_cursor, null);
        // newest first
        const times = full.json.events.map((e) => Date.parse(e.timestamp));
        for (let i = 1; i < times.length; i++) assert.ok(times[i - 1] >= times[i], 'newest first');

        for (const limit of [1, 7, 10, 59, 60]) {
            const now = await s.get('/api/events?user_id=pg-all&limit=1000');
            const expected = now.json.events.map((e) => e.properties.n);
            assert.equal(new Set(expected).size, expected.length);
            const seen = [];
            let cursor = null, pages = 0;
            do {
                const q = new URLSearchParams({ user_id: 'pg-all', limit: String(limit) });
                if (cursor) q.set('cursor', cursor);
                const r = await s.get(`/api/events?${q}`);
                assert.equal(r.status, 200);
                assert.ok(r.json.events.length <= limit);
                seen.push(...r.json.events.map((e) => e.properties.n));
                cursor = r.json.next_cursor;
                pages++;
                if (pages === 2) {
                    // newer events arriving between pages must not shift what follows
                    await s.track('track', { userId: 'pg-all', event: 'even', properties: { n: 1000 + limit }, timestamp: '2030-01-01T00:00:00Z' });
                    await s.track('track', { userId: 'pg-all', event: 'late', properties: { n: 2000 + limit } });
                }
            } while (cursor && pages < 200);
            assert.deepEqual(seen, expected, `limit ${limit}`);
        }
    });

    it('GET /api/events names the person by anonymous_id, email or id too', async () => {
        await s.track('identify', { userId: 'ev-k', anonymousId: 'ev-k-anon', traits: { email: 'EvK@ex.com' } });
        await s.track('track', { userId: 'ev-k', event: 'k', timestamp: '2024-01-01T00:00:00Z' });
        const id = (await s.person('ev-k')).id;
        for (const q of ['anonymous_id=ev-k-anon', 'email=evk%40EX.com', `id=${id}`, 'user_id=ev-k']) {
            const r = await s.get(`/api/events?${q}`);
            assert.equal(r.status, 200, q);
            assert.deepEqual(r.json, { events: [{ event: 'k', timestamp: '2024-01-01T00:00:00.000Z', properties: {} }], next_cursor: null }, q);
        }
    });

    it('DELETE erases the person and their events from memory: 404 afterwards, counts drop, the keys are free again', async () => {
        await s.track('identify', { userId: 'er-1', anonymousId: 'er-1-anon', traits: { email: 'erase.me@ex.com', plan: 'pro' } });
        for (let i = 0; i < 5; i++) await s.track('track', { userId: 'er-1', event: 'erase_ev', properties: { i } });
        await s.track('identify', { userId: 'er-keep', traits: { plan: 'pro' } });
        await s.track('track', { userId: 'er-keep', event: 'erase_ev' });
        const p = await s.person('er-1');
        const m0 = await s.metrics();
        const schema0 = (await s.get('/api/schema')).json;

        const d = await s.del('/api/people/er-1');
        assert.equal(d.status, 200);
        assert.deepEqual(d.json, { erased: true });

        for (const path of ['/api/people/er-1', '/api/people/er-1-anon?by=anonymous_id', '/api/people/erase.me@ex.com?by=email',
            `/api/people/${p.id}?by=id`, '/api/events?user_id=er-1', '/api/events?anonymous_id=er-1-anon', `/api/events?id=${p.id}`]) {
            const r = await s.get(path);
            assert.equal(r.status, 404, path);
            assert.equal(r.json.error.code, 'person_not_found', path);
        }
        const m1 = await s.metrics();
        assert.equal(metricValue(m1, 'segd_people'), metricValue(m0, 'segd_people') - 1);
        assert.equal(metricValue(m1, 'segd_events'), metricValue(m0, 'segd_events') - 5);
        const schema1 = (await s.get('/api/schema')).json;
        const ev = (sc) => sc.event_types.find((e) => e.name === 'erase_ev').events;
        assert.equal(ev(schema1), ev(schema0) - 5);
        const people = (sc) => sc.attributes.find((a) => a.name === 'plan').people;
        assert.equal(people(schema1), people(schema0) - 1);
        // the other person is untouched
        assert.deepEqual((await s.person('er-keep')).event_counts, { erase_ev: 1 });

        // a second DELETE is 404
        const d2 = await s.del('/api/people/er-1');
        assert.equal(d2.status, 404);
        assert.equal(d2.json.error.code, 'person_not_found');

        // the same ids later make a new, empty person
        await s.track('identify', { userId: 'er-1', anonymousId: 'er-1-anon', traits: { email: 'erase.me@ex.com' } });
        const q = await s.person('er-1');
        assert.notEqual(q.id, p.id);
        assert.deepEqual(q.event_counts, {});
        assert.deepEqual(q.events, []);
        assert.equal(q.attributes.plan, undefined);
        assert.equal((await s.person('erase.me@ex.com', { by: 'email' })).id, q.id);
    });

    it('DELETE by anonymous_id, email and id', async () => {
        for (const [by, make] of [
            ['anonymous_id', async () => { await s.track('track', { anonymousId: 'del-a', event: 'x' }); return 'del-a'; }],
            ['email', async () => { await s.track('identify', { userId: 'del-e', traits: { email: 'Del.E@ex.com' } }); return 'del.e@EX.com'; }],
            ['id', async () => { await s.track('identify', { userId: 'del-i' }); return (await s.person('del-i')).id; }],
        ]) {
            const key = await make();
            const r = await s.del(`/api/people/${encodeURIComponent(key)}?by=${by}`);
            assert.equal(r.status, 200, by);
            assert.deepEqual(r.json, { erased: true });
            assert.equal((await s.get(`/api/people/${encodeURIComponent(key)}?by=${by}`)).status, 404, by);
        }
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});
