// t1000 - segments over HTTP: create / list / show / edit / delete, members with
// entered_at, real-time membership on every write (and the outbox), the clock, edits
// with and without backfill, preview, recalculate and cached results, history, the
// membership log, cycles, the deletion guard, erasure, and restarts without duplicate
// transitions.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, errorOf, runSegd, ISO_RE } from './lib/segd.mjs';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86400000;
const iso = (ms) => new Date(ms).toISOString();

const HIGH_VALUE = {
    or: [
        { event: 'purchase', op: 'gte', value: 3 },
        { event: 'purchase', metric: { fn: 'sum', property: 'amount' }, op: 'gte', value: 500 },
    ],
};

describe('segments', () => {
    let s;
    let hv;                 // the High-Value Customer segment
    let outboxSeq = 0;

    const track = (userId, amount, at = NOW) =>
        s.post('/v1/track', { userId, event: 'purchase', properties: { amount }, timestamp: iso(at) });
    const identify = (userId, traits, at = NOW) => s.post('/v1/identify', { userId, traits, timestamp: iso(at) });
    const setClock = (ms) => s.request('PUT', '/api/_test/clock', { body: { now: iso(ms) } });
    const members = async (id) => {
        const r = await s.get(`/api/segments/${id}/people?fields=user_id&limit=1000`);
        assert.equal(r.status, 200, r.text);
        return r.json.people.map((p) => p.user_id).sort();
    };
    // the outbox rows written since the last call
    const outbox = async () => {
        const r = await s.get(`/api/transitions?after=${outboxSeq}`);
        assert.equal(r.status, 200, r.text);
        outboxSeq = r.json.next_after;
        return r.json.transitions;
    };
    const profile = async (userId) => {
        const r = await s.get(`/api/people/${userId}`);
        assert.equal(r.status, 200, r.text);
        return r.json;
    };

    before(async () => {
        s = await startSegd(null, { args: ['--test-clock'] });
        assert.equal((await setClock(NOW)).status, 200);
        // ann: 2 purchases; bob: one of 600; cy: none
        for (const [u, a] of [['ann', 10], ['ann', 20], ['bob', 600]]) assert.equal((await track(u, a, NOW - DAY)).status, 200);
        assert.equal((await identify('cy', { plan: 'free' }, NOW - DAY)).status, 200);
    });
    after(async () => { if (s) await s.close(); });

    it('creates "High-Value Customer": current matches join silently (no outbox rows)', async () => {
        const r = await s.post('/api/segments', { name: 'High-Value Customer', description: '3+ purchases or 500+ spent', filter: HIGH_VALUE });
        assert.equal(r.status, 201, r.text);
        hv = r.json.id;
        assert.match(hv, /^seg_[0-9a-z]{12}$/);
        assert.equal(r.json.name, 'High-Value Customer');
        assert.equal(r.json.size, 1);
        assert.equal(r.json.cached.size, 1);
        assert.match(r.json.cached.computed_at, ISO_RE);
        assert.equal(r.json.refresh, '30m');
        assert.deepEqual(r.json.hidden_from, []);
        assert.equal(r.json.filter_text, 'count(purchase) >= 3 or sum(purchase.amount) >= 500');
        assert.deepEqual(await members(hv), ['bob']);
        assert.deepEqual(await outbox(), []);
        const bob = await profile('bob');
        assert.equal(bob.segments.length, 1);
        assert.equal(bob.segments[0].id, hv);
        assert.equal(bob.segments[0].entered_by, 'definition');
        assert.equal(bob.segments[0].entered_at, iso(NOW));
        const list = await s.get('/api/segments');
        assert.deepEqual(list.json.segments.map((x) => x.id), [hv]);
    });

    it('a third purchase makes ann a member before the track call returns, with an outbox row', async () => {
        assert.equal((await track('ann', 5, NOW)).status, 200);
        assert.deepEqual(await members(hv), ['ann', 'bob']);
        const rows = await outbox();
        assert.equal(rows.length, 1);
        assert.equal(rows[0].segment, hv);
        assert.equal(rows[0].segment_name, 'High-Value Customer');
        assert.equal(rows[0].change, 'entered');
        assert.equal(rows[0].cause, 'write');
        assert.equal(rows[0].at, iso(NOW));
        const ann = await profile('ann');
        assert.equal(rows[0].person, ann.id);
        assert.deepEqual(ann.segments.map((x) => [x.id, x.entered_by]), [[hv, 'write']]);
        assert.equal(ann.segment_log[0].change, 'entered');
        // the member list carries entered_at
        const r = await s.get(`/api/segments/${hv}/people?fields=user_id`);
        const row = r.json.people.find((p) => p.user_id === 'ann');
        assert.equal(row.entered_at, iso(NOW));
        // a write that changes nothing the segment reads makes no row
        assert.equal((await identify('ann', { plan: 'pro' })).status, 200);
        assert.deepEqual(await outbox(), []);
    });

    it('the clock: people leave "Active" and enter "Dormant" at the moment their last_seen turns 30 days old', async () => {
        const r = await s.post('/api/segments', { name: 'Dormant', filter: 'last_seen more_than_ago 30d' });
        assert.equal(r.status, 201, r.text);
        const dormant = r.json.id;
        const a = await s.post('/api/segments', { name: 'Active', filter: { attribute: 'last_seen', op: 'less_than_ago', value: '30d' } });
        assert.equal(a.status, 201, a.text);
        const active = a.json.id;
        assert.deepEqual(await members(active), ['ann', 'bob', 'cy']);
        assert.deepEqual(await members(dormant), []);
        // bob and cy were last seen a day before NOW: dormant 30 days later, at that exact moment
        assert.equal((await setClock(NOW + 29 * DAY)).status, 200);
        assert.deepEqual(await members(dormant), []);
        assert.equal((await setClock(NOW + 30 * DAY)).status, 200);
        assert.deepEqual(await members(dormant), ['bob', 'cy']);
        assert.deepEqual(await members(active), ['ann']);
        const all = await outbox();
        const rows = all.filter((x) => x.segment === dormant);
        assert.deepEqual(rows.map((x) => [x.change, x.cause, x.at]), [['entered', 'clock', iso(NOW - DAY + 30 * DAY + 1)], ['entered', 'clock', iso(NOW - DAY + 30 * DAY + 1)]]);
        // the exits from Active carry the exact moment the boundary passed, not when the clock was moved
        const exits = all.filter((x) => x.segment === active);
        assert.deepEqual(exits.map((x) => [x.change, x.cause, x.at]), [['exited', 'clock', iso(NOW - DAY + 30 * DAY + 1)], ['exited', 'clock', iso(NOW - DAY + 30 * DAY + 1)]]);
        // cy comes back: leaves at once (a write)
        assert.equal((await identify('cy', { plan: 'free' }, NOW + 30 * DAY)).status, 200);
        assert.deepEqual(await members(dormant), ['bob']);
        const back = (await outbox()).filter((x) => x.segment === dormant);
        assert.deepEqual(back.map((x) => [x.change, x.cause]), [['exited', 'write']]);
        // everyone else goes dormant too, at their own moments; the log names each
        assert.equal((await setClock(NOW + 40 * DAY)).status, 200);
        assert.deepEqual(await members(dormant), ['ann', 'bob']);
        const log = await s.get(`/api/segments/${dormant}/log`);
        assert.equal(log.status, 200, log.text);
        assert.deepEqual(log.json.transitions.map((x) => x.change), ['entered', 'exited', 'entered', 'entered']);
        assert.ok(log.json.transitions.every((x) => x.segment === dormant));
        assert.equal(log.json.next_before, null);
        const page = await s.get(`/api/segments/${dormant}/log?limit=1`);
        assert.equal(page.json.transitions.length, 1);
        const rest = await s.get(`/api/segments/${dormant}/log?before=${page.json.next_before}`);
        assert.equal(rest.json.transitions.length, 3);
        assert.equal((await s.request('DELETE', `/api/segments/${dormant}`)).status, 200);
        assert.equal((await s.request('DELETE', `/api/segments/${active}`)).status, 200);
        await outbox();
    });

    it('edits: without backfill members change silently, with backfill they are transitions; preview first', async () => {
        const pv = await s.post(`/api/segments/${hv}/preview`, { filter: 'count(purchase) >= 1' });
        assert.equal(pv.status, 200, pv.text);
        assert.equal(pv.json.size, 2);
        assert.equal(pv.json.entering.count, 0);
        assert.equal(pv.json.leaving.count, 0);
        const pv2 = await s.post(`/api/segments/${hv}/preview`, { filter: 'sum(purchase.amount) >= 500' });
        assert.equal(pv2.json.leaving.count, 1);
        assert.equal(pv2.json.leaving.sample[0].user_id, 'ann');
        assert.equal(pv2.json.new_size, 1);
        assert.deepEqual(await members(hv), ['ann', 'bob']);        // a preview changes nothing

        let r = await s.patch(`/api/segments/${hv}`, { filter: 'sum(purchase.amount) >= 500' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.size, 1);
        assert.equal(r.json.name, 'High-Value Customer');           // what was not sent stays
        assert.equal(r.json.description, '3+ purchases or 500+ spent');
        assert.deepEqual(await outbox(), []);
        r = await s.patch(`/api/segments/${hv}`, { filter: HIGH_VALUE, backfill: true });
        assert.equal(r.status, 200, r.text);
        const rows = await outbox();
        assert.deepEqual(rows.map((x) => [x.change, x.cause]), [['entered', 'definition']]);
        assert.deepEqual(await members(hv), ['ann', 'bob']);
    });

    it('cached results: a snapshot until recalculated; in_cached filters on it', async () => {
        const before = await s.get(`/api/segments/${hv}`);
        // dee buys 600: a member now, not in the snapshot taken before
        assert.equal((await track('dee', 600, NOW + 40 * DAY)).status, 200);
        const cur = await s.get(`/api/segments/${hv}`);
        assert.equal(cur.json.size, 3);
        const cachedSearch = () => s.post('/api/people/search', { filter: { segment: hv, op: 'in_cached' }, fields: ['user_id'] });
        const liveSearch = () => s.post('/api/people/search', { filter: `in segment "${hv}"`, fields: ['user_id'] });
        assert.equal((await liveSearch()).json.total, 3);
        const snapSize = cur.json.cached.size;
        assert.equal((await cachedSearch()).json.total, snapSize);
        const rc = await s.post(`/api/segments/${hv}/recalculate`);
        assert.equal(rc.status, 200, rc.text);
        assert.equal(rc.json.cached.size, 3);
        assert.ok(rc.json.cached.computed_at >= before.json.cached.computed_at);
        assert.equal((await cachedSearch()).json.total, 3);
        // the refresh interval: the snapshot follows by itself once it has passed
        assert.equal((await s.patch(`/api/segments/${hv}`, { refresh: '1h' })).json.refresh, '1h');
        assert.equal((await track('eve', 900, NOW + 40 * DAY)).status, 200);
        assert.equal((await cachedSearch()).json.total, 3);
        assert.equal((await setClock(NOW + 40 * DAY + 2 * 3600000)).status, 200);
        assert.equal((await cachedSearch()).json.total, 4);
        await outbox();
    });

    it('history: size points and entered/exited per day', async () => {
        const r = await s.get(`/api/segments/${hv}/history`);
        assert.equal(r.status, 200, r.text);
        assert.ok(r.json.points.length >= 2, r.text);
        for (const p of r.json.points) assert.match(p.at, ISO_RE);
        assert.ok(r.json.points.some((p) => p.kind === 'recalculation'));
        assert.ok(r.json.points.some((p) => p.kind === 'hourly'));
        const entered = r.json.days.reduce((n, d) => n + d.entered, 0);
        assert.ok(entered >= 3, r.text);
        for (const d of r.json.days) assert.match(d.date, /^\d{4}-\d{2}-\d{2}$/);
    });

    it('segments of segments, cycles and the deletion guard', async () => {
        const r = await s.post('/api/segments', { name: 'Pro high-value', filter: { and: [{ segment: hv, op: 'in' }, { attribute: 'plan', op: 'eq', value: 'pro' }] } });
        assert.equal(r.status, 201, r.text);
        const pro = r.json.id;
        assert.deepEqual(await members(pro), ['ann']);
        // bob becomes pro: enters hv's dependant in the same write
        assert.equal((await identify('bob', { plan: 'pro' })).status, 200);
        assert.deepEqual(await members(pro), ['ann', 'bob']);
        const rows = await outbox();
        assert.deepEqual(rows.map((x) => [x.segment, x.change]), [[pro, 'entered']]);
        // hv may not name pro: a cycle, refused, nothing changed
        const cyc = await s.patch(`/api/segments/${hv}`, { filter: { segment: pro, op: 'not_in' } });
        assert.equal(cyc.status, 422, cyc.text);
        assert.equal(errorOf(cyc).code, 'segment_cycle');
        assert.ok(errorOf(cyc).message.includes('Pro high-value'));
        assert.equal((await s.get(`/api/segments/${hv}`)).json.filter_text, 'count(purchase) >= 3 or sum(purchase.amount) >= 500');
        const del = await s.request('DELETE', `/api/segments/${hv}`);
        assert.equal(del.status, 409, del.text);
        assert.equal(errorOf(del).code, 'segment_in_use');
        assert.equal((await s.request('DELETE', `/api/segments/${pro}`)).status, 200);
        assert.equal((await s.get(`/api/segments/${pro}`)).status, 404);
        await outbox();
    });

    it('bad input: clear errors, nothing half-created', async () => {
        const cases = [
            [{ filter: HIGH_VALUE }, 422, 'missing_field'],
            [{ name: 'x' }, 422, 'missing_field'],
            [{ name: '', filter: HIGH_VALUE }, 422, 'invalid_name'],
            [{ name: 'x'.repeat(101), filter: HIGH_VALUE }, 422, 'invalid_name'],
            [{ name: 'High-Value Customer', filter: HIGH_VALUE }, 409, 'name_taken'],
            [{ name: 'x', filter: { attribute: 'nosuch', op: 'eq', value: 1 } }, 422, 'unknown_attribute'],
            [{ name: 'x', filter: 'plan = ' }, 422, null],
            [{ name: 'x', filter: { segment: 'seg_aaaaaaaaaaaa', op: 'in' } }, 422, 'unknown_segment'],
            [{ name: 'x', filter: HIGH_VALUE, colour: 'red' }, 422, 'unknown_field'],
            [{ name: 'x', filter: HIGH_VALUE, refresh: '5 minutes' }, 422, 'invalid_value'],
        ];
        for (const [body, status, code] of cases) {
            const r = await s.post('/api/segments', body);
            assert.equal(r.status, status, `${JSON.stringify(body)} -> ${r.text}`);
            if (code) assert.equal(errorOf(r).code, code, r.text);
        }
        assert.equal((await s.get('/api/segments')).json.segments.length, 1);
        for (const path of ['/api/segments/seg_aaaaaaaaaaaa', '/api/segments/seg_aaaaaaaaaaaa/people', '/api/segments/seg_aaaaaaaaaaaa/log', '/api/segments/seg_aaaaaaaaaaaa/history']) {
            const r = await s.get(path);
            assert.equal(r.status, 404, `${path}: ${r.text}`);
            assert.equal(errorOf(r).code, 'segment_not_found');
        }
        // an attribute a segment reads cannot be dropped
        const used = await s.post('/api/segments', { name: 'Free plan', filter: 'plan = "free"' });
        const drop = await s.request('DELETE', '/api/attributes/plan');
        assert.equal(drop.status, 409, drop.text);
        assert.equal(errorOf(drop).code, 'attribute_in_use');
        assert.equal((await s.request('DELETE', `/api/segments/${used.json.id}`)).status, 200);
    });

    it('segd segments list | show | create | recalc | delete against the server', async () => {
        const cli = (...args) => runSegd(['segments', '--server', s.url, ...args]);
        let r = await cli('create', 'Big spenders', 'sum(purchase.amount) >= 500', '--description', 'spent 500+', '--refresh', '4h');
        assert.equal(r.code, 0, r.stderr);
        const id = /^id\s+(seg_\w+)/m.exec(r.stdout)[1];
        assert.match(r.stdout, /refreshed every 4h/);
        r = await cli('list');
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`${id}\\s+Big spenders\\s+\\d+`));
        assert.match(r.stdout, /High-Value Customer/);
        r = await cli('show', id, '--json');
        assert.equal(JSON.parse(r.stdout).description, 'spent 500+');
        assert.equal((await cli('recalc', id)).code, 0);
        r = await cli('create', 'Big spenders', 'count(purchase) >= 1');
        assert.equal(r.code, 1);
        assert.match(r.stderr, /name_taken/);
        r = await cli('create', 'Broken', 'plan = ');
        assert.equal(r.code, 1);
        assert.match(r.stderr, /filter_syntax/);
        r = await cli('delete', id);
        assert.equal(r.code, 0, r.stderr);
        assert.equal((await cli('show', id)).code, 1);
        assert.equal((await cli('frobnicate')).code, 2);
        assert.equal((await cli('show')).code, 2);
        await outbox();
    });

    it('erasure: the person exits (cause erasure) and leaves the snapshots and logs', async () => {
        const eve = await profile('eve');
        assert.ok(eve.segments.some((x) => x.id === hv));
        assert.equal((await s.request('DELETE', '/api/people/eve')).status, 200);
        const rows = await outbox();
        assert.deepEqual(rows.map((x) => [x.segment, x.change, x.cause, x.person]), [[hv, 'exited', 'erasure', eve.id]]);
        assert.ok(!(await members(hv)).includes('eve'));
        const cached = await s.post('/api/people/search', { filter: { segment: hv, op: 'in_cached' }, fields: ['user_id'] });
        assert.ok(!cached.json.people.some((p) => p.user_id === 'eve'));
        const log = await s.get(`/api/segments/${hv}/log?limit=1000`);
        const hers = log.json.transitions.filter((x) => x.person === eve.id);
        assert.deepEqual(hers.map((x) => x.cause), ['erasure']);   // only the exit itself remains
    });

    it('restart: definitions, members with entered_at, snapshots and logs persist; no duplicate transitions', async () => {
        const before = await s.get(`/api/segments/${hv}`);
        const annBefore = await profile('ann');
        await s.stop();
        await s.restart();
        assert.equal((await setClock(NOW + 40 * DAY + 2 * 3600000)).status, 200);
        const after = await s.get(`/api/segments/${hv}`);
        assert.equal(after.status, 200, after.text);
        for (const k of ['id', 'name', 'description', 'filter_text', 'size', 'created_at', 'updated_at', 'refresh']) assert.deepEqual(after.json[k], before.json[k], k);
        assert.deepEqual(after.json.cached, before.json.cached);
        assert.deepEqual((await profile('ann')).segments, annBefore.segments);
        assert.deepEqual(await outbox(), []);
        // kill -9 and a window that passes while down: only the real difference appears
        const win = await s.post('/api/segments', { name: 'Bought this week', filter: 'count(purchase, within 7d) >= 1' });
        assert.deepEqual(await members(win.json.id), ['dee']);
        await s.kill9();
        await s.restart();
        assert.equal((await setClock(NOW + 60 * DAY)).status, 200);
        assert.deepEqual(await members(win.json.id), []);
        const rows = await outbox();
        assert.deepEqual(rows.map((x) => [x.segment, x.change, x.cause]), [[win.json.id, 'exited', 'clock']]);
        await s.stop();
        await s.restart();
        assert.deepEqual(await outbox(), []);
    });
});
