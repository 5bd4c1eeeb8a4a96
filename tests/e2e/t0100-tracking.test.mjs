// t0100 - the tracking API (Segment HTTP spec): identify, track, page, screen, group,
// batch; traits flattening and Segment's reserved traits; null clears; tags replace;
// timestamps; datetime inference; last_seen / created_at; messageId dedup.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, metricValue, ISO_RE, ID_RE } from './lib/segd.mjs';

describe('tracking API', () => {
    let s;
    before(async () => { s = await startSegd(null); });
    after(async () => { if (s) await s.close(); });

    it('identify answers exactly 200 {"success": true} with a JSON content type', async () => {
        const r = await s.post('/v1/identify', { userId: 'id-1', traits: { plan: 'pro' } });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: true });
        assert.match(r.headers.get('content-type'), /^application\/json/);
    });

    it('identify sets traits with their types; the profile shows them', async () => {
        await s.track('identify', {
            userId: 'tr-1',
            traits: { email: 'Ann@Example.com', name: 'Ann', plan: 'pro', seats: 5, trial: false, roles: ['admin', 'dev'], scores: [1, 2] },
        });
        const p = await s.person('tr-1');
        assert.match(p.id, ID_RE);
        assert.equal(p.user_id, 'tr-1');
        assert.deepEqual(p.anonymous_ids, []);
        assert.deepEqual(p.tags, []);
        assert.equal(p.attributes.email, 'Ann@Example.com');
        assert.equal(p.attributes.name, 'Ann');
        assert.equal(p.attributes.plan, 'pro');
        assert.equal(p.attributes.seats, 5);
        assert.equal(p.attributes.trial, false);
        assert.deepEqual(p.attributes.roles, ['admin', 'dev']);
        assert.deepEqual(p.attributes.scores, [1, 2]);
        assert.deepEqual(p.event_counts, {});
        assert.deepEqual(p.events, []);
        assert.equal(p.next_cursor, null);
        const schema = (await s.get('/api/schema')).json;
        const type = (n) => schema.attributes.find((a) => a.name === n)?.type;
        assert.equal(type('plan'), 'string');
        assert.equal(type('seats'), 'number');
        assert.equal(type('trial'), 'boolean');
        assert.equal(type('roles'), 'list');
        assert.equal(type('scores'), 'json');
    });

    it('nested traits are flattened with dots; createdAt, address.city, address.country map to the standard attributes', async () => {
        await s.track('identify', {
            userId: 'tr-2',
            traits: {
                createdAt: '2020-05-01T08:00:00Z',
                address: { zip: '10115', city: 'Berlin', country: 'DE', street: { name: 'Unter den Linden', no: 1 } },
            },
        });
        const p = await s.person('tr-2');
        assert.equal(p.attributes['address.zip'], '10115');
        assert.equal(p.attributes['address.street.name'], 'Unter den Linden');
        assert.equal(p.attributes['address.street.no'], 1);
        assert.equal(p.attributes.city, 'Berlin');
        assert.equal(p.attributes.country, 'DE');
        assert.equal(p.attributes['address.city'], undefined);
        assert.equal(p.attributes['address.country'], undefined);
        assert.equal(p.attributes.createdAt, undefined);
        assert.equal(p.created_at, '2020-05-01T08:00:00.000Z');
        assert.equal(p.attributes.created_at, '2020-05-01T08:00:00.000Z');
    });

    it('a null trait clears the attribute; other attributes stay', async () => {
        await s.track('identify', { userId: 'tr-3', traits: { plan: 'pro', color: 'red' } });
        await s.track('identify', { userId: 'tr-3', traits: { color: null } });
        const p = await s.person('tr-3');
        assert.equal(p.attributes.plan, 'pro');
        assert.equal('color' in p.attributes, false);
        // clearing an attribute nobody has is fine too
        await s.track('identify', { userId: 'tr-3', traits: { never_seen_attr: null } });
    });

    it('a tags trait replaces the tag list (duplicates dropped); [] empties it', async () => {
        await s.track('identify', { userId: 'tg-1', traits: { tags: ['a', 'b', 'a'] } });
        assert.deepEqual((await s.person('tg-1')).tags, ['a', 'b']);
        await s.track('identify', { userId: 'tg-1', traits: { tags: ['c'] } });
        assert.deepEqual((await s.person('tg-1')).tags, ['c']);
        await s.track('identify', { userId: 'tg-1', traits: { plan: 'x' } });
        assert.deepEqual((await s.person('tg-1')).tags, ['c'], 'an identify without tags keeps them');
        await s.track('identify', { userId: 'tg-1', traits: { tags: [] } });
        assert.deepEqual((await s.person('tg-1')).tags, []);
    });

    it('track appends an event with its properties; event_counts counts them; newest first', async () => {
        await s.track('track', { userId: 'ev-1', event: 'purchase', properties: { amount: 10, sku: 'A-1' }, timestamp: '2024-01-01T10:00:00Z' });
        await s.track('track', { userId: 'ev-1', event: 'purchase', properties: { amount: 20, sku: 'B-2' }, timestamp: '2024-01-03T10:00:00Z' });
        await s.track('track', { userId: 'ev-1', event: 'signup', timestamp: '2024-01-02T10:00:00Z' });
        const p = await s.person('ev-1');
        assert.deepEqual(p.event_counts, { purchase: 2, signup: 1 });
        assert.deepEqual(p.events, [
            { event: 'purchase', timestamp: '2024-01-03T10:00:00.000Z', properties: { amount: 20, sku: 'B-2' } },
            { event: 'signup', timestamp: '2024-01-02T10:00:00.000Z', properties: {} },
            { event: 'purchase', timestamp: '2024-01-01T10:00:00.000Z', properties: { amount: 10, sku: 'A-1' } },
        ]);
        assert.equal(p.next_cursor, null);
    });

    it('nested event properties are flattened with dots', async () => {
        await s.track('track', { userId: 'ev-2', event: 'checkout', properties: { cart: { total: 99.5, currency: 'EUR' } }, timestamp: '2024-02-01T00:00:00Z' });
        const p = await s.person('ev-2');
        assert.deepEqual(p.events[0].properties, { 'cart.total': 99.5, 'cart.currency': 'EUR' });
    });

    it('timestamp wins over originalTimestamp; originalTimestamp is used without timestamp; without either, the arrival time', async () => {
        await s.track('track', { userId: 'ts-1', event: 'a', timestamp: '2023-03-03T03:03:03.003Z', originalTimestamp: '2022-01-01T00:00:00Z' });
        await s.track('track', { userId: 'ts-1', event: 'b', originalTimestamp: '2022-06-15T12:00:00+02:00' });
        const before = Date.now();
        await s.track('track', { userId: 'ts-1', event: 'c' });
        const afterT = Date.now();
        const evs = await s.allEvents({ user_id: 'ts-1' });
        const by = Object.fromEntries(evs.map((e) => [e.event, e.timestamp]));
        assert.equal(by.a, '2023-03-03T03:03:03.003Z');
        assert.equal(by.b, '2022-06-15T10:00:00.000Z', 'an offset is converted to UTC');
        assert.match(by.c, ISO_RE);
        const c = Date.parse(by.c);
        assert.ok(c >= before - 5 && c <= afterT + 5, `arrival time ${by.c} between ${before} and ${afterT}`);
    });

    it('page appends page_view with url, path, title, referrer and the page name', async () => {
        await s.track('page', {
            userId: 'pg-1', name: 'Pricing', timestamp: '2024-04-01T00:00:00Z',
            properties: { url: 'https://ex.com/pricing?x=1', path: '/pricing', title: 'Pricing - Ex', referrer: 'https://google.com/' },
        });
        const p = await s.person('pg-1');
        assert.deepEqual(p.event_counts, { page_view: 1 });
        assert.equal(p.events[0].event, 'page_view');
        assert.deepEqual(p.events[0].properties, {
            url: 'https://ex.com/pricing?x=1', path: '/pricing', title: 'Pricing - Ex', referrer: 'https://google.com/', name: 'Pricing',
        });
    });

    it('a page name in properties is not overwritten by the top-level name; a page without name has none', async () => {
        await s.track('page', { userId: 'pg-2', name: 'Top', properties: { name: 'Inner', path: '/x' }, timestamp: '2024-04-02T00:00:00Z' });
        await s.track('page', { userId: 'pg-2', properties: { path: '/y' }, timestamp: '2024-04-01T00:00:00Z' });
        const evs = await s.allEvents({ user_id: 'pg-2' });
        assert.deepEqual(evs.map((e) => e.properties), [{ name: 'Inner', path: '/x' }, { path: '/y' }]);
    });

    it('screen appends screen_view with the screen name', async () => {
        await s.track('screen', { userId: 'sc-1', name: 'Settings', properties: { variant: 'b' }, timestamp: '2024-05-01T00:00:00Z' });
        const p = await s.person('sc-1');
        assert.deepEqual(p.event_counts, { screen_view: 1 });
        assert.deepEqual(p.events[0], { event: 'screen_view', timestamp: '2024-05-01T00:00:00.000Z', properties: { variant: 'b', name: 'Settings' } });
    });

    it('group adds groupId to the list attribute groups, once', async () => {
        await s.track('group', { userId: 'gr-1', groupId: 'acme' });
        await s.track('group', { userId: 'gr-1', groupId: 'acme' });
        await s.track('group', { userId: 'gr-1', groupId: 'globex', traits: { name: 'Globex' } });
        const p = await s.person('gr-1');
        assert.deepEqual(p.attributes.groups, ['acme', 'globex']);
        assert.equal(p.attributes.name, undefined, 'group traits describe the group, not the person');
        assert.deepEqual(p.event_counts, {});
        const schema = (await s.get('/api/schema')).json;
        assert.equal(schema.attributes.find((a) => a.name === 'groups').type, 'list');
    });

    it('batch applies messages of every type in order', async () => {
        const r = await s.post('/v1/batch', {
            batch: [
                { type: 'identify', userId: 'bt-1', traits: { plan: 'team' }, timestamp: '2024-06-01T00:00:00Z' },
                { type: 'track', userId: 'bt-1', event: 'invite', properties: { n: 3 }, timestamp: '2024-06-02T00:00:00Z' },
                { type: 'page', userId: 'bt-1', name: 'Home', timestamp: '2024-06-03T00:00:00Z' },
                { type: 'screen', userId: 'bt-1', name: 'Feed', timestamp: '2024-06-04T00:00:00Z' },
                { type: 'group', userId: 'bt-1', groupId: 'g-bt', timestamp: '2024-06-05T00:00:00Z' },
                { type: 'alias', previousId: 'bt-1', userId: 'bt-1-new', timestamp: '2024-06-06T00:00:00Z' },
                { type: 'identify', userId: 'bt-1-new', traits: { plan: 'enterprise' }, timestamp: '2024-06-07T00:00:00Z' },
            ],
        });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: true });
        const p = await s.person('bt-1-new');
        assert.equal(p.attributes.plan, 'enterprise');
        assert.deepEqual(p.attributes.groups, ['g-bt']);
        assert.deepEqual(p.event_counts, { invite: 1, page_view: 1, screen_view: 1 });
        assert.equal(p.created_at, '2024-06-01T00:00:00.000Z');
        assert.equal(p.last_seen, '2024-06-07T00:00:00.000Z');
    });

    it('an empty batch is accepted and changes nothing', async () => {
        const r = await s.post('/v1/batch', { batch: [] });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: true });
    });

    it('a repeated messageId is answered 200 and applied once (single calls, batches, other endpoints)', async () => {
        const m0 = await s.metrics();
        const dedup0 = metricValue(m0, 'segd_deduplicated_messages_total');
        const msg = { userId: 'dd-1', event: 'clicked', messageId: 'msg-dd-1', timestamp: '2024-07-01T00:00:00Z' };
        await s.track('track', msg);
        await s.track('track', msg);
        await s.track('track', { ...msg, properties: { changed: true } });
        const r = await s.post('/v1/batch', { batch: [{ type: 'track', ...msg }, { type: 'track', ...msg, messageId: 'msg-dd-2' }] });
        assert.equal(r.status, 200);
        // the same id inside one batch counts once too
        await s.post('/v1/batch', { batch: [{ type: 'track', ...msg, messageId: 'msg-dd-3' }, { type: 'track', ...msg, messageId: 'msg-dd-3' }] });
        const evs = await s.allEvents({ user_id: 'dd-1' });
        assert.equal(evs.length, 3, `events: ${JSON.stringify(evs)}`);
        assert.deepEqual(evs.map((e) => e.properties), [{}, {}, {}]);
        // a messageId is per source, not per endpoint: an identify with a used id is dropped too
        await s.track('identify', { userId: 'dd-1', traits: { plan: 'dup' }, messageId: 'msg-dd-1' });
        assert.equal((await s.person('dd-1')).attributes.plan, undefined);
        const dedup1 = metricValue(await s.metrics(), 'segd_deduplicated_messages_total');
        assert.equal(dedup1 - dedup0, 5);
    });

    it('datetime inference: an ISO 8601 date-time string is a datetime (normalised to UTC ms); others stay strings', async () => {
        await s.track('identify', {
            userId: 'dt-1',
            traits: {
                renewal_at: '2025-03-01T12:00:00+02:00',
                trial_end: '2025-03-01T10:00:00Z',
                birthday: '1990-04-05',
                label: '2025-03-01 is the day',
                code: '12345',
            },
        });
        const p = await s.person('dt-1');
        assert.equal(p.attributes.renewal_at, '2025-03-01T10:00:00.000Z');
        assert.equal(p.attributes.trial_end, '2025-03-01T10:00:00.000Z');
        assert.equal(p.attributes.birthday, '1990-04-05', 'a plain date is not a date-time');
        assert.equal(p.attributes.label, '2025-03-01 is the day');
        assert.equal(p.attributes.code, '12345', 'a numeric string stays a string');
        const schema = (await s.get('/api/schema')).json;
        const type = (n) => schema.attributes.find((a) => a.name === n)?.type;
        assert.equal(type('renewal_at'), 'datetime');
        assert.equal(type('trial_end'), 'datetime');
        assert.equal(type('birthday'), 'string');
        assert.equal(type('label'), 'string');
        assert.equal(type('code'), 'string');
        // a datetime attribute refuses a non-date-time string, and a string one a number
        const bad = await s.post('/v1/identify', { userId: 'dt-1', traits: { renewal_at: 'next week' } });
        assert.equal(bad.status, 422);
        assert.equal(bad.json.error.code, 'type_conflict');
        // event properties are inferred the same way
        await s.track('track', { userId: 'dt-1', event: 'renewed', properties: { at: '2025-04-01T00:00:00.5+01:00' }, timestamp: '2025-04-01T00:00:00Z' });
        const ev = (await s.person('dt-1')).events[0];
        assert.equal(ev.properties.at, '2025-03-31T23:00:00.500Z');
        const et = (await s.get('/api/schema')).json.event_types.find((e) => e.name === 'renewed');
        assert.deepEqual(et.properties, [{ name: 'at', type: 'datetime' }]);
    });

    it('last_seen is the newest message time and created_at the oldest, whatever the arrival order', async () => {
        await s.track('track', { userId: 'ls-1', event: 'e', timestamp: '2024-03-10T00:00:00Z' });
        await s.track('track', { userId: 'ls-1', event: 'e', timestamp: '2024-03-05T00:00:00Z' });
        await s.track('identify', { userId: 'ls-1', traits: { a: 1 }, timestamp: '2024-03-20T00:00:00Z' });
        await s.track('track', { userId: 'ls-1', event: 'e', timestamp: '2024-03-15T00:00:00Z' });
        const p = await s.person('ls-1');
        assert.equal(p.created_at, '2024-03-05T00:00:00.000Z');
        assert.equal(p.last_seen, '2024-03-20T00:00:00.000Z');
        assert.equal(p.attributes.created_at, '2024-03-05T00:00:00.000Z');
        assert.equal(p.attributes.last_seen, '2024-03-20T00:00:00.000Z');
        // group and page messages count as seeing the person too
        await s.track('group', { userId: 'ls-1', groupId: 'g', timestamp: '2024-03-01T00:00:00Z' });
        await s.track('page', { userId: 'ls-1', timestamp: '2024-03-25T00:00:00Z' });
        const q = await s.person('ls-1');
        assert.equal(q.created_at, '2024-03-01T00:00:00.000Z');
        assert.equal(q.last_seen, '2024-03-25T00:00:00.000Z');
    });

    it('a createdAt trait sets created_at; later older messages no longer move it, last_seen still moves', async () => {
        await s.track('track', { userId: 'ca-1', event: 'e', timestamp: '2024-03-10T00:00:00Z' });
        await s.track('identify', { userId: 'ca-1', traits: { createdAt: '2024-03-08T00:00:00Z' }, timestamp: '2024-03-11T00:00:00Z' });
        let p = await s.person('ca-1');
        assert.equal(p.created_at, '2024-03-08T00:00:00.000Z');
        await s.track('track', { userId: 'ca-1', event: 'e', timestamp: '2024-01-01T00:00:00Z' });
        await s.track('track', { userId: 'ca-1', event: 'e', timestamp: '2024-04-01T00:00:00Z' });
        p = await s.person('ca-1');
        assert.equal(p.created_at, '2024-03-08T00:00:00.000Z');
        assert.equal(p.last_seen, '2024-04-01T00:00:00.000Z');
        // a created_at trait (the standard name) pins it as well, also to a later time
        await s.track('identify', { userId: 'ca-1', traits: { created_at: '2024-03-09T00:00:00Z' } });
        assert.equal((await s.person('ca-1')).created_at, '2024-03-09T00:00:00.000Z');
    });

    it('an identify with only anonymousId creates an anonymous person', async () => {
        await s.track('identify', { anonymousId: 'anon-tr-1', traits: { plan: 'free' } });
        const p = await s.person('anon-tr-1', { by: 'anonymous_id' });
        assert.equal(p.user_id, null);
        assert.deepEqual(p.anonymous_ids, ['anon-tr-1']);
        assert.equal(p.attributes.plan, 'free');
    });

    it('/metrics counts applied messages and appended events', async () => {
        const m0 = await s.metrics();
        const msgs0 = metricValue(m0, 'segd_ingested_messages_total');
        const evs0 = metricValue(m0, 'segd_ingested_events_total');
        await s.post('/v1/batch', {
            batch: [
                { type: 'track', userId: 'mt-1', event: 'x' },
                { type: 'identify', userId: 'mt-1', traits: { a: 1 } },
                { type: 'page', userId: 'mt-1' },
            ],
        });
        const m1 = await s.metrics();
        assert.equal(metricValue(m1, 'segd_ingested_messages_total') - msgs0, 3);
        assert.equal(metricValue(m1, 'segd_ingested_events_total') - evs0, 2);
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});
