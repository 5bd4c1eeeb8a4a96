// t0700 - GET /api/schema, POST / DELETE /api/attributes, /livez, /readyz, /metrics.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, errorOf, metricValue, parallel } from './lib/segd.mjs';

const STANDARD = [
    ['user_id', 'string'], ['anonymous_ids', 'list'], ['email', 'string'], ['name', 'string'], ['phone', 'string'],
    ['country', 'string'], ['city', 'string'], ['created_at', 'datetime'], ['last_seen', 'datetime'], ['tags', 'list'],
];

describe('schema, attributes, operations', () => {
    let s;
    before(async () => { s = await startSegd(null); });
    after(async () => { if (s) await s.close(); });

    const schema = async () => {
        const r = await s.get('/api/schema');
        assert.equal(r.status, 200);
        return r.json;
    };
    const attr = (sc, name) => sc.attributes.find((a) => a.name === name);

    it('an empty store has the 10 standard attributes and no event types', async () => {
        const sc = await schema();
        assert.deepEqual(Object.keys(sc).sort(), ['attributes', 'event_types']);
        assert.deepEqual(sc.attributes, STANDARD.map(([name, type]) => ({ name, type, standard: true, people: 0 })));
        assert.deepEqual(sc.event_types, []);
    });

    it('GET /api/schema lists attributes with type, standard, people and event types with events and typed properties', async () => {
        await s.track('identify', { userId: 'sc-1', traits: { email: 'a@ex.com', plan: 'pro', seats: 2, vip: true, roles: ['a'], meta: [1, { x: 2 }] } });
        await s.track('identify', { userId: 'sc-2', traits: { plan: 'free' } });
        await s.track('track', { userId: 'sc-1', event: 'purchase', properties: { amount: 5, sku: 'x', gift: false, at: '2024-01-01T00:00:00Z', items: ['a', 'b'] } });
        await s.track('track', { userId: 'sc-2', event: 'purchase', properties: { amount: 7 } });
        await s.track('page', { userId: 'sc-2', name: 'Home', properties: { path: '/' } });
        const sc = await schema();
        assert.deepEqual(attr(sc, 'plan'), { name: 'plan', type: 'string', standard: false, people: 2 });
        assert.deepEqual(attr(sc, 'seats'), { name: 'seats', type: 'number', standard: false, people: 1 });
        assert.deepEqual(attr(sc, 'vip'), { name: 'vip', type: 'boolean', standard: false, people: 1 });
        assert.deepEqual(attr(sc, 'roles'), { name: 'roles', type: 'list', standard: false, people: 1 });
        assert.deepEqual(attr(sc, 'meta'), { name: 'meta', type: 'json', standard: false, people: 1 });
        assert.deepEqual(attr(sc, 'email'), { name: 'email', type: 'string', standard: true, people: 1 });
        assert.deepEqual(attr(sc, 'user_id'), { name: 'user_id', type: 'string', standard: true, people: 2 });
        const purchase = sc.event_types.find((t) => t.name === 'purchase');
        assert.equal(purchase.events, 2);
        assert.deepEqual(purchase.properties, [
            { name: 'amount', type: 'number' }, { name: 'sku', type: 'string' }, { name: 'gift', type: 'boolean' },
            { name: 'at', type: 'datetime' }, { name: 'items', type: 'list' },
        ]);
        const pv = sc.event_types.find((t) => t.name === 'page_view');
        assert.equal(pv.events, 1);
        assert.deepEqual(pv.properties.map((p) => p.name).sort(), ['name', 'path']);
        // the json attribute reads back as the JSON it was
        assert.deepEqual((await s.person('sc-1')).attributes.meta, [1, { x: 2 }]);
    });

    it('POST /api/attributes declares a type before first sight: 201', async () => {
        const r = await s.post('/api/attributes', { name: 'decl_num', type: 'number' });
        assert.equal(r.status, 201);
        assert.deepEqual(r.json, { name: 'decl_num', type: 'number' });
        assert.deepEqual(attr(await schema(), 'decl_num'), { name: 'decl_num', type: 'number', standard: false, people: 0 });
        await s.track('identify', { userId: 'sc-3', traits: { decl_num: 3 } });
        const bad = await s.post('/v1/identify', { userId: 'sc-3', traits: { decl_num: 'three' } });
        assert.equal(bad.status, 422);
        assert.equal(errorOf(bad).code, 'type_conflict');
        for (const type of ['string', 'boolean', 'datetime', 'list']) {
            const d = await s.post('/api/attributes', { name: `decl_${type}`, type });
            assert.equal(d.status, 201, d.text);
            assert.equal(attr(await schema(), `decl_${type}`).type, type);
        }
    });

    it('declaring an existing attribute with the same type is not an error; with another type -> 409 type_conflict', async () => {
        const same = await s.post('/api/attributes', { name: 'plan', type: 'string' });
        assert.ok(same.status === 200 || same.status === 201, same.text);
        const r = await s.post('/api/attributes', { name: 'plan', type: 'number' });
        assert.equal(r.status, 409);
        const e = errorOf(r);
        assert.equal(e.code, 'type_conflict');
        assert.equal(e.field, 'plan');
        assert.match(e.message, /string/);
        const std = await s.post('/api/attributes', { name: 'email', type: 'number' });
        assert.equal(std.status, 409);
        assert.equal(errorOf(std).code, 'type_conflict');
    });

    it('POST /api/attributes with a bad type or name -> 400 invalid_type / invalid_name', async () => {
        const t = await s.post('/api/attributes', { name: 'x1', type: 'float' });
        assert.equal(t.status, 400, t.text);
        assert.equal(errorOf(t).code, 'invalid_type');
        const n = await s.post('/api/attributes', { name: '$x', type: 'string' });
        assert.equal(n.status, 400, n.text);
        assert.equal(errorOf(n).code, 'invalid_name');
        assert.equal(attr(await schema(), 'x1'), undefined);
    });

    it('a declared string attribute keeps a date-time-looking string as the string sent', async () => {
        assert.equal((await s.post('/api/attributes', { name: 'ext_ref', type: 'string' })).status, 201);
        await s.track('identify', { userId: 'sc-4', traits: { ext_ref: '2024-06-01T12:00:00+02:00', undeclared_when: '2024-06-01T12:00:00+02:00' } });
        const p = await s.person('sc-4');
        assert.equal(p.attributes.ext_ref, '2024-06-01T12:00:00+02:00');
        assert.equal(p.attributes.undeclared_when, '2024-06-01T10:00:00.000Z');
        const sc = await schema();
        assert.equal(attr(sc, 'ext_ref').type, 'string');
        assert.equal(attr(sc, 'undeclared_when').type, 'datetime');
        // and a plain string too
        await s.track('identify', { userId: 'sc-4', traits: { ext_ref: 'abc' } });
        assert.equal((await s.person('sc-4')).attributes.ext_ref, 'abc');
    });

    it('DELETE /api/attributes/{name} removes it from everyone; re-sending it with another type works', async () => {
        await s.track('identify', { userId: 'sc-5', traits: { level: 3 } });
        await s.track('identify', { userId: 'sc-6', traits: { level: 4 } });
        assert.equal((await s.post('/v1/identify', { userId: 'sc-5', traits: { level: 'gold' } })).status, 422);
        const d = await s.del('/api/attributes/level');
        assert.equal(d.status, 200);
        assert.equal(attr(await schema(), 'level'), undefined);
        assert.equal('level' in (await s.person('sc-5')).attributes, false);
        assert.equal('level' in (await s.person('sc-6')).attributes, false);
        await s.track('identify', { userId: 'sc-5', traits: { level: 'gold' } });
        assert.equal((await s.person('sc-5')).attributes.level, 'gold');
        assert.deepEqual(attr(await schema(), 'level'), { name: 'level', type: 'string', standard: false, people: 1 });
        // and the old values do not come back after a restart
        await s.stop();
        await s.restart();
        assert.equal((await s.person('sc-5')).attributes.level, 'gold');
        assert.equal('level' in (await s.person('sc-6')).attributes, false);
        assert.equal(attr(await schema(), 'level').type, 'string');
    });

    it('DELETE /api/attributes: unknown -> 404 attribute_not_found; standard -> 422 standard_attribute', async () => {
        const r = await s.del('/api/attributes/no_such_attr');
        assert.equal(r.status, 404);
        assert.equal(errorOf(r).code, 'attribute_not_found');
        for (const [name] of STANDARD) {
            const x = await s.del(`/api/attributes/${name}`);
            assert.equal(x.status, 422, name);
            assert.equal(errorOf(x).code, 'standard_attribute');
        }
        assert.equal((await schema()).attributes.filter((a) => a.standard).length, 10);
    });

    it('an attribute with a dotted name can be declared and deleted', async () => {
        await s.track('identify', { userId: 'sc-7', traits: { address: { zip: '10115' } } });
        assert.equal(attr(await schema(), 'address.zip').type, 'string');
        assert.equal((await s.del('/api/attributes/address.zip')).status, 200);
        assert.equal(attr(await schema(), 'address.zip'), undefined);
    });

    it('GET /livez -> 200; GET /readyz -> 200 once ready', async () => {
        const l = await s.get('/livez');
        assert.equal(l.status, 200);
        assert.deepEqual(l.json, { status: 'ok' });
        const r = await s.get('/readyz');
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { status: 'ready' });
    });

    it('GET /metrics is Prometheus text: content type, HELP and TYPE for every family, samples parse, ends with a newline', async () => {
        await s.get('/api/people/nobody');      // a 4xx for the request counter
        const r = await s.get('/metrics');
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4');
        const text = r.text;
        assert.ok(text.endsWith('\n'), 'ends with a newline');
        const families = {
            segd_http_requests_total: 'counter', segd_http_request_duration_seconds: 'histogram', segd_people: 'gauge',
            segd_events: 'gauge', segd_engine_bytes: 'gauge', segd_ingested_messages_total: 'counter',
            segd_ingested_events_total: 'counter', segd_deduplicated_messages_total: 'counter',
            segd_store_commits_total: 'counter', segd_write_requests_total: 'counter',
        };
        const help = new Set(), type = {};
        for (const line of text.split('\n')) {
            if (line === '') continue;
            let m;
            if ((m = /^# HELP (\w+) \S.*$/.exec(line))) { help.add(m[1]); continue; }
            if ((m = /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) { type[m[1]] = m[2]; continue; }
            assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? -?[0-9.eE+-]+$|^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? (\+Inf|NaN)$/, `sample line: ${line}`);
            const name = line.split(/[{ ]/)[0];
            const family = Object.keys(type).find((f) => name === f ||
                (type[f] === 'histogram' && [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(name)));
            assert.ok(family, `sample ${line} has a TYPE line before it`);
        }
        for (const [f, t] of Object.entries(families)) {
            assert.ok(help.has(f), `# HELP ${f}`);
            assert.equal(type[f], t, `# TYPE ${f}`);
        }
        assert.ok(metricValue(text, 'segd_http_requests_total{route="GET /api/people/{key}",code="4xx"}') >= 1);
        assert.ok(metricValue(text, 'segd_http_requests_total{route="GET /api/people/{key}",code="2xx"}') >= 1);
        assert.ok(metricValue(text, 'segd_http_request_duration_seconds_count{route="GET /api/schema"}') >= 1);
        assert.ok(metricValue(text, 'segd_http_request_duration_seconds_bucket{route="GET /api/schema",le="+Inf"}') >= 1);
        for (const part of ['people', 'strings', 'events', 'properties']) {
            assert.ok(metricValue(text, `segd_engine_bytes{part="${part}"}`) >= 0, part);
        }
        assert.ok(metricValue(text, 'segd_write_requests_total{result="committed"}') > 0);
        assert.ok(metricValue(text, 'segd_write_requests_total{result="failed"}') >= 1, 'the 422s above failed');
        assert.ok(metricValue(text, 'segd_store_commits_total') > 0);
    });

    it('/metrics segd_people and segd_events match the data; counters move with writes', async () => {
        const m0 = await s.metrics();
        const people0 = metricValue(m0, 'segd_people');
        const events0 = metricValue(m0, 'segd_events');
        const commits0 = metricValue(m0, 'segd_store_commits_total');
        const writes0 = metricValue(m0, 'segd_write_requests_total{result="committed"}');
        await s.track('track', { userId: 'mx-new', event: 'mx', messageId: 'mx-1' });
        await s.track('track', { userId: 'mx-new', event: 'mx', messageId: 'mx-1' });
        await s.track('track', { userId: 'mx-new', event: 'mx' });
        const m1 = await s.metrics();
        assert.equal(metricValue(m1, 'segd_people'), people0 + 1);
        assert.equal(metricValue(m1, 'segd_events'), events0 + 2);
        assert.ok(metricValue(m1, 'segd_store_commits_total') >= commits0 + 1);
        assert.equal(metricValue(m1, 'segd_write_requests_total{result="committed"}'), writes0 + 3);
        const sc = await schema();
        const total = sc.event_types.reduce((n, t) => n + t.events, 0);
        assert.equal(metricValue(m1, 'segd_events'), total);
        assert.equal(metricValue(m1, 'segd_people'), attr(sc, 'user_id').people + 0 /* all have user ids here */);
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});

describe('while the store loads', () => {
    let s;
    before(async () => { s = await startSegd(null); });
    after(async () => { if (s) await s.close(); });

    it('while loading: /livez 200, /readyz and reads 503 not_ready at once (not held until the load ends); then 200', async (t) => {
        // enough events that the rebuild takes a while (half a second under the sanitizers)
        const N = 60, PER = 500;
        await parallel(Array.from({ length: N }, (_, b) => b), 4, async (b) => {
            const batch = [];
            for (let i = 0; i < PER; i++) batch.push({ type: 'track', userId: `ld-${i % 50}`, event: `ld_${i % 4}`, properties: { b, i }, timestamp: '2024-01-01T00:00:00Z' });
            assert.equal((await s.post('/v1/batch', { batch })).status, 200);
        });
        await s.stop();
        await s.restart({ ready: false });
        const tSent = Date.now();
        let tListening = null;
        s.listening().then(() => { tListening = Date.now(); });
        const answered = {};
        const timed = (name, p) => p.then((r) => { answered[name] = Date.now() - tSent; return r; });
        const [rz, lz, read, events, schema, metrics] = await Promise.all([
            timed('readyz', s.get('/readyz')), timed('livez', s.get('/livez')), timed('person', s.get('/api/people/ld-1')),
            timed('events', s.get('/api/events?user_id=ld-1')), timed('schema', s.get('/api/schema')), timed('metrics', s.get('/metrics')),
        ]);
        if (rz.status === 200) return t.skip('the store loaded before the first request');
        await s.listening();
        const load = tListening - tSent;
        if (load < 200) return t.skip(`the store loaded in ${load} ms, too fast to tell`);
        assert.equal(rz.status, 503);
        assert.equal(errorOf(rz).code, 'not_ready');
        assert.equal(lz.status, 200);
        assert.equal(metrics.status, 200, 'monitoring works while loading');
        for (const [name, r] of [['person', read], ['events', events], ['schema', schema], ['livez', lz], ['readyz', rz], ['metrics', metrics]]) {
            if (name !== 'livez' && name !== 'metrics') {
                assert.equal(r.status, 503, `${name}: ${r.text}`);
                assert.equal(errorOf(r).code, 'not_ready');
            }
            assert.ok(answered[name] < load / 2, `${name} was answered after ${answered[name]} ms of a ${load} ms load: held until the load ended`);
        }
        assert.equal((await s.get('/readyz')).status, 200);
        assert.deepEqual((await s.person('ld-1', { eventsLimit: 0 })).event_counts, { ld_1: N * PER / 100, ld_3: N * PER / 100 });
    });

    it('a write sent while loading waits in the queue and is applied once loaded', async (t) => {
        await s.stop();
        await s.restart({ ready: false });
        const w = s.post('/v1/track', { userId: 'ld-w', event: 'queued' });
        const r = await w;
        if (r.status === 503) {
            assert.equal(errorOf(r).code, 'not_ready');
            await s.listening();
            assert.equal((await s.get('/api/people/ld-w')).status, 404, 'a refused write is not applied');
        } else {
            assert.equal(r.status, 200, r.text);
            await s.listening();
            assert.deepEqual((await s.person('ld-w')).event_counts, { queued: 1 });
        }
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});
