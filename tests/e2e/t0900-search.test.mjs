// t0900 - People search over HTTP: POST /api/people/search (JSON and text filters),
// GET /api/people?filter=, cursor paging, count_only, fields, export (CSV, NDJSON),
// explain, GET /api/filters/parse, the test clock, `segd query`, and their errors.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, errorOf, runSegd } from './lib/segd.mjs';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86400000;
const iso = (ms) => new Date(ms).toISOString();

// ann: pro, DE, 4 purchases (2 within 14 days), 2 /pricing views in the last 14 days
// bob: pro, FR, 1 purchase of 600
// cy:  free, DE, no purchase, one /pricing view 20 days ago
// dee: pro, US, 3 purchases totalling 30, long ago
// eve: enterprise, no country, tags [vip]; "=cmd" as her name (a CSV formula)
const PEOPLE = [
    { userId: 'ann', traits: { plan: 'pro', country: 'DE', name: 'Ann', tags: ['beta'] } },
    { userId: 'bob', traits: { plan: 'Pro', country: 'FR', name: 'Bob' } },
    { userId: 'cy', traits: { plan: 'free', country: 'DE', name: 'Cy' } },
    { userId: 'dee', traits: { plan: 'pro', country: 'US', name: 'Dee' } },
    { userId: 'eve', traits: { plan: 'enterprise', name: '=cmd', tags: ['vip'] } },
];

function purchases() {
    const ev = [];
    const buy = (userId, daysAgo, amount) => ev.push({ type: 'track', userId, event: 'purchase', properties: { amount }, timestamp: iso(NOW - daysAgo * DAY) });
    buy('ann', 1, 10); buy('ann', 5, 20); buy('ann', 30, 30); buy('ann', 100, 40);
    buy('bob', 2, 600);
    buy('dee', 200, 10); buy('dee', 201, 10); buy('dee', 202, 10);
    const view = (userId, daysAgo, url) => ev.push({ type: 'page', userId, name: 'x', properties: { url }, timestamp: iso(NOW - daysAgo * DAY) });
    view('ann', 1, 'https://x.test/pricing'); view('ann', 3, 'https://x.test/pricing?plan=pro'); view('ann', 4, 'https://x.test/blog');
    view('cy', 20, 'https://x.test/pricing');
    return ev;
}

const ids = (r) => r.json.people.map((p) => p.user_id).sort();

describe('people search', () => {
    let s;
    before(async () => {
        s = await startSegd(null, { args: ['--test-clock'] });
        const clock = await s.request('PUT', '/api/_test/clock', { body: { now: iso(NOW) } });
        assert.equal(clock.status, 200, clock.text);
        const batch = [...PEOPLE.map((p) => ({ type: 'identify', timestamp: iso(NOW - 300 * DAY), ...p })), ...purchases()];
        const r = await s.post('/v1/batch', { batch });
        assert.equal(r.status, 200, r.text);
    });
    after(async () => { if (s) await s.close(); });

    const search = (body) => s.post('/api/people/search', body);

    it('a JSON filter: total and people, case-insensitive by default', async () => {
        const r = await search({ filter: { attribute: 'plan', op: 'eq', value: 'PRO' }, fields: ['user_id', 'plan'] });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.total, 3);
        assert.deepEqual(ids(r), ['ann', 'bob', 'dee']);
        for (const p of r.json.people) assert.deepEqual(Object.keys(p).sort(), ['id', 'plan', 'user_id']);
        assert.equal(r.json.next_cursor, null);
    });

    it('no filter matches everyone; {"and": []} too; count_only leaves out the people', async () => {
        assert.equal((await search({})).json.total, 5);
        assert.equal((await search({ filter: { and: [] } })).json.total, 5);
        const c = await search({ filter: { or: [] }, count_only: true });
        assert.equal(c.json.total, 0);
        assert.equal(c.json.people, undefined);
    });

    it("the issue's example in the text form, in a body and in GET /api/people", async () => {
        const text = 'plan = "pro" and country in ("DE","FR") and (count(purchase) >= 3 or sum(purchase.amount) >= 500)';
        const r = await search({ filter: text, fields: ['user_id'] });
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(ids(r), ['ann', 'bob']);
        const g = await s.get(`/api/people?filter=${encodeURIComponent(text)}&fields=user_id`);
        assert.equal(g.status, 200, g.text);
        assert.deepEqual(ids(g), ['ann', 'bob']);
    });

    it('event conditions with where and a window; never did', async () => {
        const text = 'count(page_view where url contains "/pricing", within 14d) >= 2 and not count(purchase, within 90d) >= 1';
        assert.deepEqual(ids(await search({ filter: text })), []);
        const pricing = 'count(page_view where url contains "/pricing", within 14d) >= 2';
        assert.deepEqual(ids(await search({ filter: pricing })), ['ann']);
        const never = { event: 'purchase', op: 'eq', value: 0 };
        assert.deepEqual(ids(await search({ filter: never })), ['cy', 'eve']);
    });

    it('time-relative filters read the test clock', async () => {
        const recent = { event: 'purchase', within: '14d', op: 'gte', value: 1 };
        assert.deepEqual(ids(await search({ filter: recent })), ['ann', 'bob']);
        // now - 14d is exactly ann's newest purchase: the window includes its start
        await s.request('PUT', '/api/_test/clock', { body: { now: iso(NOW + 13 * DAY) } });
        assert.deepEqual(ids(await search({ filter: recent })), ['ann']);
        await s.request('PUT', '/api/_test/clock', { body: { now: iso(NOW) } });
        assert.deepEqual(ids(await search({ filter: recent })), ['ann', 'bob']);
    });

    it('sorted pages with opaque cursors: everyone exactly once, in order', async () => {
        for (const dir of ['asc', 'desc']) {
            const seen = [];
            let cursor = null;
            for (let page = 0; page < 10; page++) {
                const r = await search({ sort: [{ attribute: 'name', dir }], limit: 2, cursor, fields: ['user_id', 'name'] });
                assert.equal(r.status, 200, r.text);
                assert.equal(r.json.total, 5);
                seen.push(...r.json.people.map((p) => p.name));
                cursor = r.json.next_cursor;
                if (!cursor) break;
            }
            const want = ['=cmd', 'Ann', 'Bob', 'Cy', 'Dee'];
            assert.deepEqual(seen, dir === 'asc' ? want : [...want].reverse());
        }
    });

    it('a person added between pages does not shift or repeat the others', async () => {
        const first = await search({ sort: [{ attribute: 'user_id', dir: 'asc' }], limit: 2 });
        assert.deepEqual(first.json.people.map((p) => p.user_id), ['ann', 'bob']);
        await s.post('/v1/identify', { userId: 'aaa-new', traits: { plan: 'free' } });
        const second = await search({ sort: [{ attribute: 'user_id', dir: 'asc' }], limit: 10, cursor: first.json.next_cursor });
        assert.deepEqual(second.json.people.map((p) => p.user_id), ['cy', 'dee', 'eve']);
        await s.del('/api/people/aaa-new');
    });

    it('GET /api/people takes sort, limit, fields and count_only from the query', async () => {
        const r = await s.get('/api/people?sort=user_id:desc&limit=2&fields=user_id,country');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual(r.json.people, [{ id: r.json.people[0].id, user_id: 'eve', country: null }, { id: r.json.people[1].id, user_id: 'dee', country: 'US' }]);
        const c = await s.get('/api/people?filter=' + encodeURIComponent('country = "DE"') + '&count_only=true');
        assert.equal(c.json.total, 2);
    });

    it('errors: unknown names with suggestions, operators, syntax, cursor, limit, sort', async () => {
        let r = await search({ filter: { attribute: 'paln', op: 'eq', value: 'pro' } });
        assert.equal(r.status, 422);
        let e = errorOf(r);
        assert.equal(e.code, 'unknown_attribute');
        assert.match(e.message, /"plan"/);
        assert.equal(e.field, '$.attribute');

        r = await search({ filter: { and: [{ attribute: 'plan', op: 'gt', value: 3 }] } });
        e = errorOf(r);
        assert.equal(r.status, 422);
        assert.equal(e.code, 'operator_mismatch');
        assert.match(e.message, /contains/);
        assert.equal(e.field, '$.and[0].op');

        r = await search({ filter: { event: 'purchse', op: 'gte', value: 1 } });
        assert.equal(errorOf(r).code, 'unknown_event');
        assert.match(errorOf(r).message, /"purchase"/);

        r = await search({ filter: 'plan = ' });
        assert.equal(r.status, 422);
        e = errorOf(r);
        assert.equal(e.code, 'filter_syntax');
        assert.match(e.message, /line 1, column/);

        r = await search({ filter: { attribute: 'plan', op: 'eq', value: 'pro' }, cursor: 'bm90IGEgY3Vyc29y' });
        assert.equal(r.status, 400);
        assert.equal(errorOf(r).code, 'invalid_cursor');
        // a cursor of another sort order is refused too
        const p = await search({ sort: [{ attribute: 'name' }], limit: 1 });
        r = await search({ sort: [{ attribute: 'user_id' }], limit: 1, cursor: p.json.next_cursor });
        assert.equal(errorOf(r).code, 'invalid_cursor');

        r = await search({ limit: 1001 });
        assert.equal(r.status, 422);
        assert.equal(errorOf(r).code, 'invalid_limit');
        r = await search({ sort: [{ attribute: 'tags' }] });
        assert.equal(errorOf(r).code, 'invalid_sort');
        r = await search({ fields: ['nope'] });
        assert.equal(errorOf(r).code, 'unknown_attribute');
        r = await search({ filtr: {} });
        assert.equal(errorOf(r).code, 'unknown_field');
        r = await s.get('/api/people?filter=' + encodeURIComponent('plan ~ 1'));
        assert.equal(errorOf(r).code, 'filter_syntax');
    });

    it('POST /api/people/{key}/explain shows each node, its result and the values looked at', async () => {
        const filter = { or: [{ event: 'purchase', op: 'gte', value: 3 }, { event: 'purchase', metric: { fn: 'sum', property: 'amount' }, op: 'gte', value: 500 }] };
        const r = await s.post('/api/people/bob/explain', { filter });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.match, true);
        const [count, sum] = r.json.filter.or;
        assert.equal(count.result, false);
        assert.equal(count.actual, 1);
        assert.equal(sum.result, true);
        assert.equal(sum.actual, 600);
        assert.equal(r.json.filter.result, true);
        const a = await s.post('/api/people/cy/explain', { filter: 'plan = "pro"' });
        assert.equal(a.json.match, false);
        assert.equal(a.json.filter.actual, 'free');
        assert.equal((await s.post('/api/people/nobody/explain', { filter: 'plan = "pro"' })).status, 404);
    });

    it('POST /api/people/export streams CSV (formulas defused) and NDJSON', async () => {
        const csv = await s.post('/api/people/export', { filter: { attribute: 'plan', op: 'is_set' }, format: 'csv', fields: ['user_id', 'name', 'tags'] });
        assert.equal(csv.status, 200);
        assert.match(csv.headers.get('content-type'), /^text\/csv/);
        const lines = csv.text.trim().split('\r\n');
        assert.equal(lines[0], 'id,user_id,name,tags');
        assert.equal(lines.length, 6);
        assert.ok(lines.some((l) => l.includes(`"'=cmd"`)), csv.text);
        assert.ok(lines.some((l) => l.includes('"[""vip""]"')), csv.text);
        const nd = await s.post('/api/people/export', { filter: 'country = "DE"', format: 'ndjson', fields: ['user_id'] });
        const rows = nd.text.trim().split('\n').map((l) => JSON.parse(l));
        assert.deepEqual(rows.map((x) => x.user_id).sort(), ['ann', 'cy']);
    });

    it('GET /api/filters/parse returns the JSON and the canonical text, which parses to the same', async () => {
        const q = 'count(page_view where url contains "/pricing", within 14d) >= 2 and not count(purchase, within 90d) >= 1';
        const r = await s.get('/api/filters/parse?q=' + encodeURIComponent(q));
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.filter.and);
        const again = await s.get('/api/filters/parse?q=' + encodeURIComponent(r.json.text));
        assert.deepEqual(again.json.filter, r.json.filter);
        assert.equal(again.json.text, r.json.text);
    });

    it('segd query prints the count and the first rows', async () => {
        const r = await runSegd(['query', '--server', s.url, 'plan = "pro"']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^3 people match/);
        assert.match(r.stdout, /ann/);
        const bad = await runSegd(['query', '--server', s.url, 'plan = ']);
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /filter_syntax/);
    });
});

describe('declared event types', () => {
    it('POST /api/event-types lets filters name an event before any arrives, and survives a restart', async (t) => {
        const s = await startSegd(t);
        await s.post('/v1/identify', { userId: 'x1', traits: { plan: 'pro' } });
        let r = await s.post('/api/people/search', { filter: 'count(refund where amount > 10) = 0' });
        assert.equal(errorOf(r).code, 'unknown_event');
        r = await s.post('/api/event-types', { name: 'refund', properties: { amount: 'number', reason: 'string' } });
        assert.equal(r.status, 201, r.text);
        assert.deepEqual(r.json.properties, [{ name: 'amount', type: 'number' }, { name: 'reason', type: 'string' }]);
        r = await s.post('/api/event-types', { name: 'refund', properties: { amount: 'number' } });
        assert.equal(r.status, 200);
        r = await s.post('/api/event-types', { name: 'refund', properties: { amount: 'string' } });
        assert.equal(r.status, 409);
        assert.equal(errorOf(r).code, 'type_conflict');
        assert.equal(errorOf(r).field, 'properties.amount');
        r = await s.post('/api/event-types', { name: 'refund', properties: { amount: 'money' } });
        assert.equal(errorOf(r).code, 'invalid_type');
        await s.stop();
        await s.restart();
        r = await s.post('/api/people/search', { filter: 'count(refund where amount > 10) = 0' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.total, 1);
        // a declared property keeps its type: a string amount is refused
        r = await s.post('/v1/track', { userId: 'x1', event: 'refund', properties: { amount: 'lots' } });
        assert.equal(r.status, 422);
        await s.close();
    });
});

describe('the test clock', () => {
    it('PUT /api/_test/clock does not exist without --test-clock', async (t) => {
        const s = await startSegd(t);
        const r = await s.request('PUT', '/api/_test/clock', { body: { now: '2026-01-01T00:00:00Z' } });
        assert.equal(r.status, 404);
        await s.close();
    });
});
