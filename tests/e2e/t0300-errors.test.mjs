// t0300 - every error of docs/API.md: status, stable code, a message, and field / at /
// index / errors where they apply. Body limits are probed with raw sockets, since
// fetch may see a reset instead of an early 413.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, errorOf, rawHttp, requestHead } from './lib/segd.mjs';

function expectError(r, status, code, extra = {}) {
    assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
    const e = errorOf(r);
    assert.equal(e.code, code, r.text);
    for (const [k, v] of Object.entries(extra)) assert.deepEqual(e[k], v, `error.${k} in ${r.text}`);
    assert.match(r.headers.get ? r.headers.get('content-type') : r.headers['content-type'], /^application\/json/);
    return e;
}

const BODY_LIMIT = 2048;
const MESSAGE_LIMIT = 512;

describe('errors', () => {
    let s;
    before(async () => {
        s = await startSegd(null, { args: ['--max-body-bytes', String(BODY_LIMIT), '--max-message-bytes', String(MESSAGE_LIMIT)] });
    });
    after(async () => { if (s) await s.close(); });

    describe('malformed bodies', () => {
        it('invalid JSON -> 400 invalid_json with the byte offset "at"', async () => {
            const cases = [
                ['{"userId":"u1","event":}', 23],
                ['{"userId":"u1" "event":"e"}', 15],
                ['not json', 0],
                ['{"userId":"u1","event":"e","properties":{"a":[1,2,}}}', 50],
            ];
            for (const [body, at] of cases) {
                const r = await s.post('/v1/track', body);
                const e = expectError(r, 400, 'invalid_json', { at });
                assert.equal(typeof e.message, 'string');
            }
        });

        it('invalid JSON: "at" points at the first bad byte where an object key was expected too', async () => {
            // byte 17 is the x of xx; byte 30 the } after a trailing comma
            expectError(await s.post('/v1/track', '{"userId": "u1", xx}'), 400, 'invalid_json', { at: 17 });
            expectError(await s.post('/v1/track', '   {"userId":"u1","event":"e",}'), 400, 'invalid_json', { at: 30 });
        });

        it('trailing bytes after the JSON value -> 400 invalid_json (and nothing applied)', async () => {
            const body = '{"userId":"trail-1","event":"e"}}';
            const r = await s.post('/v1/track', body);
            expectError(r, 400, 'invalid_json', { at: 32 });
            const g = await s.get('/api/people/trail-1');
            assert.equal(g.status, 404);
        });

        it('an empty body -> 400 empty_body', async () => {
            for (const p of ['/v1/identify', '/v1/batch', '/api/people', '/api/attributes']) {
                const r = await s.post(p, '');
                expectError(r, 400, 'empty_body');
            }
            expectError(await s.patch('/api/people/x', ''), 400, 'empty_body');
        });

        it('a body that is JSON but not an object -> 400 invalid_body', async () => {
            expectError(await s.post('/api/people', [1]), 400, 'invalid_body');
            expectError(await s.patch('/api/people/x', '"text"'), 400, 'invalid_body');
            expectError(await s.post('/v1/identify', []), 400, 'invalid_body');
            expectError(await s.post('/v1/track', 42), 400, 'invalid_body');
        });

        it('missing fields -> 400 missing_field naming the field', async () => {
            expectError(await s.post('/v1/identify', { traits: { a: 1 } }), 400, 'missing_field', { field: 'userId' });
            expectError(await s.post('/v1/track', { userId: 'u' }), 400, 'missing_field', { field: 'event' });
            expectError(await s.post('/v1/alias', { userId: 'u' }), 400, 'missing_field', { field: 'previousId' });
            expectError(await s.post('/v1/alias', { previousId: 'u' }), 400, 'missing_field', { field: 'userId' });
            expectError(await s.post('/v1/group', { userId: 'u' }), 400, 'missing_field', { field: 'groupId' });
            expectError(await s.post('/api/people', { attributes: { a: 1 } }), 400, 'missing_field', { field: 'user_id' });
            expectError(await s.post('/api/attributes', { name: 'x' }), 400, 'missing_field');
        });

        it('fields of the wrong kind -> 400 invalid_field naming the field', async () => {
            expectError(await s.post('/v1/identify', { userId: 5 }), 400, 'invalid_field', { field: 'userId' });
            expectError(await s.post('/v1/identify', { userId: '' }), 400, 'invalid_field', { field: 'userId' });
            expectError(await s.post('/v1/identify', { userId: 'u', anonymousId: ['a'] }), 400, 'invalid_field', { field: 'anonymousId' });
            expectError(await s.post('/v1/identify', { userId: 'u', traits: 5 }), 400, 'invalid_field', { field: 'traits' });
            expectError(await s.post('/v1/track', { userId: 'u', event: 'e', properties: 'p' }), 400, 'invalid_field', { field: 'properties' });
            expectError(await s.post('/v1/track', { userId: 'u', event: '' }), 400, 'invalid_field', { field: 'event' });
            expectError(await s.post('/v1/track', { userId: 'u', event: 7 }), 400, 'invalid_field', { field: 'event' });
            expectError(await s.post('/v1/identify', { userId: 'u', messageId: 12 }), 400, 'invalid_field', { field: 'messageId' });
        });

        it('unknown fields of REST bodies -> 400 unknown_field', async () => {
            expectError(await s.post('/api/people', { user_id: 'u', foo: 1 }), 400, 'unknown_field', { field: 'foo' });
            await s.post('/api/people', { user_id: 'uf-1' });
            expectError(await s.patch('/api/people/uf-1', { attributes: {}, name: 'x' }), 400, 'unknown_field', { field: 'name' });
        });

        it('PATCH tags must be {add, remove} arrays of strings -> 400 invalid_field', async () => {
            await s.post('/api/people', { user_id: 'pt-1' });
            expectError(await s.patch('/api/people/pt-1', { tags: ['a'] }), 400, 'invalid_field', { field: 'tags' });
            expectError(await s.patch('/api/people/pt-1', { tags: { add: 'a' } }), 400, 'invalid_field', { field: 'tags.add' });
            expectError(await s.patch('/api/people/pt-1', { tags: { remove: [1] } }), 400, 'invalid_field', { field: 'tags.remove' });
        });

        it('bad timestamps -> 400 invalid_timestamp', async () => {
            for (const ts of ['yesterday', '2024-02-30T00:00:00Z', '2024-01-01T25:00:00Z', 12345]) {
                expectError(await s.post('/v1/track', { userId: 'u', event: 'e', timestamp: ts }), 400, 'invalid_timestamp', { field: 'timestamp' });
            }
            expectError(await s.post('/v1/track', { userId: 'u', event: 'e', originalTimestamp: 'soon' }), 400, 'invalid_timestamp', { field: 'originalTimestamp' });
        });

        it('bad names -> 400 invalid_name', async () => {
            expectError(await s.post('/v1/identify', { userId: 'u', traits: { $set: 1 } }), 400, 'invalid_name');
            expectError(await s.post('/v1/identify', { userId: 'u', traits: { '': 1 } }), 400, 'invalid_name');
            expectError(await s.post('/v1/identify', { userId: 'u', traits: { ['n'.repeat(129)]: 1 } }), 400, 'invalid_name');
            expectError(await s.post('/v1/track', { userId: 'u', event: 'e', properties: { 'a\u0001b': 1 } }), 400, 'invalid_name');
        });

        it('invalid UTF-8 -> 400 invalid_utf8', async () => {
            const body = Buffer.concat([Buffer.from('{"userId":"u'), Buffer.from([0xff, 0xfe]), Buffer.from('","event":"e"}')]);
            expectError(await s.post('/v1/track', body), 400, 'invalid_utf8');
            const key = Buffer.concat([Buffer.from('{"userId":"u","traits":{"'), Buffer.from([0xc3, 0x28]), Buffer.from('":1}}')]);
            expectError(await s.post('/v1/identify', key), 400, 'invalid_utf8');
        });

        it('a \\u0000 escape (NUL) in a string -> 400 invalid_utf8, not a silently shortened string', async () => {
            const r = await s.post('/v1/track', '{"userId":"nul\\u0000x","event":"e"}');
            expectError(r, 400, 'invalid_utf8');
            assert.equal((await s.get('/api/people/nul')).status, 404, 'the id must not be cut at the NUL');
            const r2 = await s.post('/v1/identify', '{"userId":"nul-2","traits":{"note":"a\\u0000b"}}');
            expectError(r2, 400, 'invalid_utf8');
        });

        it('a malformed \\u escape -> 400 invalid_json at its first bad byte, not a string cut short', async () => {
            // cJSON decodes \uZZZZ into a NUL byte: "bad\uZZZZx" would have named user "bad"
            const r = await s.post('/v1/identify', '{"userId":"bad\\uZZZZx","traits":{"plan":"b"}}');
            expectError(r, 400, 'invalid_json', { at: 16 });
            assert.equal((await s.get('/api/people/bad')).status, 404, 'the id must not be cut at the escape');
        });

        it('a key twice in an object -> 400 duplicate_key', async () => {
            expectError(await s.post('/v1/identify', '{"userId":"u","traits":{"a":1,"a":2}}'), 400, 'duplicate_key');
            expectError(await s.post('/v1/track', '{"userId":"u","event":"e","properties":{"p":{"q":1,"q":1}}}'), 400, 'duplicate_key');
        });

        it('a message over --max-message-bytes -> 400 message_too_large', async () => {
            const r = await s.post('/v1/track', { userId: 'u', event: 'e', properties: { pad: 'x'.repeat(MESSAGE_LIMIT + 10) } });
            expectError(r, 400, 'message_too_large');
        });
    });

    describe('batches', () => {
        it('a batch that is not an array -> 400 invalid_batch', async () => {
            expectError(await s.post('/v1/batch', { batch: {} }), 400, 'invalid_batch');
            expectError(await s.post('/v1/batch', { messages: [] }), 400, 'invalid_batch');
            expectError(await s.post('/v1/batch', [{ type: 'track', userId: 'u', event: 'e' }]), 400, 'invalid_batch');
        });

        it('a batch with invalid messages -> 400 invalid_batch naming each bad index and field; nothing applied', async () => {
            const r = await s.post('/v1/batch', {
                batch: [
                    { type: 'identify', userId: 'bb-1', traits: { plan: 'pro' } },
                    { type: 'track', event: 'e' },
                    { type: 'track', userId: 'bb-1', event: 'ok_event' },
                    { type: 'bogus', userId: 'bb-1' },
                    { type: 'track', userId: 'bb-1' },
                    { type: 'track', userId: 'bb-1', event: 'e', timestamp: 'nope' },
                ],
            });
            const e = expectError(r, 400, 'invalid_batch', { index: 1 });
            assert.deepEqual(e.errors.map((x) => [x.index, x.field, x.code]), [
                [1, 'userId', 'missing_field'],
                [3, 'type', 'invalid_type'],
                [4, 'event', 'missing_field'],
                [5, 'timestamp', 'invalid_timestamp'],
            ]);
            for (const x of e.errors) assert.ok(x.message.length > 10);
            assert.equal((await s.get('/api/people/bb-1')).status, 404, 'nothing of the batch is applied');
        });

        it('type conflicts in a batch -> 400 invalid_batch (not 422) naming index and field; nothing applied', async () => {
            await s.track('identify', { userId: 'bc-0', traits: { bc_seats: 3, bc_plan: 'pro' } });
            await s.track('track', { userId: 'bc-0', event: 'bc_buy', properties: { amount: 5 } });
            const r = await s.post('/v1/batch', {
                batch: [
                    { type: 'identify', userId: 'bc-1', traits: { bc_plan: 'team' } },
                    { type: 'identify', userId: 'bc-1', traits: { bc_seats: 'many' } },
                    { type: 'track', userId: 'bc-1', event: 'bc_buy', properties: { amount: 7 } },
                    { type: 'track', userId: 'bc-1', event: 'bc_buy', properties: { amount: 'lots' } },
                    { type: 'identify', userId: 'bc-1', traits: { bc_new: 1 } },
                    { type: 'identify', userId: 'bc-1', traits: { bc_new: 'one' } },
                ],
            });
            const e = expectError(r, 400, 'invalid_batch', { index: 1 });
            assert.deepEqual(e.errors.map((x) => [x.index, x.field, x.code]), [
                [1, 'bc_seats', 'type_conflict'],
                [3, 'amount', 'type_conflict'],
                [5, 'bc_new', 'type_conflict'],
            ]);
            assert.match(e.errors[0].message, /number/);
            assert.match(e.errors[0].message, /string/);
            assert.equal((await s.get('/api/people/bc-1')).status, 404, 'nothing of the batch is applied');
            const schema = (await s.get('/api/schema')).json;
            assert.equal(schema.attributes.find((a) => a.name === 'bc_new'), undefined, 'not even the new attribute');
            assert.equal(schema.event_types.find((t) => t.name === 'bc_buy').events, 1);
        });

        it('a batch with both malformed messages and type conflicts names every bad index', async () => {
            await s.track('identify', { userId: 'bm-0', traits: { bm_seats: 3 } });
            const r = await s.post('/v1/batch', {
                batch: [
                    { type: 'identify', userId: 'bm-1', traits: { bm_seats: 'many' } },
                    { type: 'track', event: 'e' },
                    { type: 'identify', userId: 'bm-1', traits: { bm_seats: 4 } },
                ],
            });
            const e = expectError(r, 400, 'invalid_batch', { index: 0 });
            assert.deepEqual(e.errors.map((x) => [x.index, x.field, x.code]), [
                [0, 'bm_seats', 'type_conflict'],
                [1, 'userId', 'missing_field'],
            ]);
            assert.equal((await s.get('/api/people/bm-1')).status, 404);
        });

        it('a message over --max-message-bytes in a batch -> 400 invalid_batch with message_too_large', async () => {
            const r = await s.post('/v1/batch', {
                batch: [
                    { type: 'track', userId: 'bl-1', event: 'e' },
                    { type: 'track', userId: 'bl-1', event: 'e', properties: { pad: 'x'.repeat(MESSAGE_LIMIT + 10) } },
                ],
            });
            const e = expectError(r, 400, 'invalid_batch', { index: 1 });
            assert.deepEqual(e.errors.map((x) => [x.index, x.code]), [[1, 'message_too_large']]);
            assert.equal((await s.get('/api/people/bl-1')).status, 404);
        });
    });

    describe('type conflicts and reserved names in single calls', () => {
        it('a single call with a type conflict -> 422 type_conflict naming the attribute and both types; nothing changes', async () => {
            await s.track('identify', { userId: 'tc-1', traits: { seats: 3, plan: 'pro' } });
            const r = await s.post('/v1/identify', { userId: 'tc-1', traits: { plan: 'team', seats: 'many' } });
            const e = expectError(r, 422, 'type_conflict', { field: 'seats' });
            assert.match(e.message, /seats/);
            assert.match(e.message, /number/);
            assert.match(e.message, /string/);
            assert.equal((await s.person('tc-1')).attributes.plan, 'pro', 'the rest of the message is not applied either');
        });

        it('a property type conflict -> 422 type_conflict naming the property and both types', async () => {
            await s.track('track', { userId: 'tc-2', event: 'tc_buy', properties: { amount: 3 } });
            const r = await s.post('/v1/track', { userId: 'tc-2', event: 'tc_buy', properties: { amount: true } });
            const e = expectError(r, 422, 'type_conflict', { field: 'amount' });
            assert.match(e.message, /amount/);
            assert.match(e.message, /number/);
            assert.match(e.message, /boolean/);
            assert.deepEqual((await s.person('tc-2')).event_counts, { tc_buy: 1 });
        });

        it('REST calls: POST /api/people and PATCH with a type conflict -> 422 type_conflict', async () => {
            await s.post('/api/people', { user_id: 'tc-3', attributes: { rest_n: 1 } });
            expectError(await s.post('/api/people', { user_id: 'tc-3', attributes: { rest_n: 'one' } }), 422, 'type_conflict', { field: 'rest_n' });
            expectError(await s.patch('/api/people/tc-3', { attributes: { rest_n: [1] } }), 422, 'type_conflict', { field: 'rest_n' });
            expectError(await s.post('/v1/identify', { userId: 'tc-3', traits: { tags: 'vip' } }), 422, 'type_conflict', { field: 'tags' });
            assert.equal((await s.person('tc-3')).attributes.rest_n, 1);
        });

        it('traits may not set user_id, anonymous_ids, last_seen, id -> 422 reserved_attribute', async () => {
            for (const name of ['user_id', 'anonymous_ids', 'last_seen', 'id']) {
                const r = await s.post('/v1/identify', { userId: 'rs-1', traits: { [name]: name === 'anonymous_ids' ? ['x'] : 'x' } });
                expectError(r, 422, 'reserved_attribute', { field: name });
                const r2 = await s.post('/api/people', { user_id: 'rs-1', attributes: { [name]: 'x' } });
                expectError(r2, 422, 'reserved_attribute', { field: name });
            }
            assert.equal((await s.get('/api/people/rs-1')).status, 404);
        });
    });

    describe('people, parameters, routes', () => {
        it('unknown person -> 404 person_not_found for GET, PATCH, DELETE and /api/events', async () => {
            expectError(await s.get('/api/people/nobody'), 404, 'person_not_found');
            expectError(await s.get('/api/people/nobody?by=anonymous_id'), 404, 'person_not_found');
            expectError(await s.get('/api/people/nobody@ex.com?by=email'), 404, 'person_not_found');
            expectError(await s.get('/api/people/p_0000000000000?by=id'), 404, 'person_not_found');
            expectError(await s.get('/api/people/not-an-id?by=id'), 404, 'person_not_found');
            expectError(await s.patch('/api/people/nobody', { attributes: { a: 1 } }), 404, 'person_not_found');
            expectError(await s.del('/api/people/nobody'), 404, 'person_not_found');
            expectError(await s.get('/api/events?user_id=nobody'), 404, 'person_not_found');
        });

        it('a PATCH of an unknown person creates nothing (not even the attribute)', async () => {
            expectError(await s.patch('/api/people/nobody-2', { attributes: { ghost_attr: 1 } }), 404, 'person_not_found');
            const schema = (await s.get('/api/schema')).json;
            assert.equal(schema.attributes.find((a) => a.name === 'ghost_attr'), undefined);
        });

        it('bad query parameters -> 400 invalid_by, invalid_cursor, invalid_parameter, missing_parameter', async () => {
            await s.track('track', { userId: 'qp-1', event: 'e' });
            expectError(await s.get('/api/people/qp-1?by=phone'), 400, 'invalid_by');
            expectError(await s.patch('/api/people/qp-1?by=name', { attributes: {} }), 400, 'invalid_by');
            expectError(await s.del('/api/people/qp-1?by=x'), 400, 'invalid_by');
            expectError(await s.get('/api/events?user_id=qp-1&cursor=garbage'), 400, 'invalid_cursor');
            for (const limit of ['0', '1001', 'abc', '-1', '5x']) {
                expectError(await s.get(`/api/events?user_id=qp-1&limit=${limit}`), 400, 'invalid_parameter');
            }
            for (const l of ['-1', '1001', 'x']) {
                expectError(await s.get(`/api/people/qp-1?events_limit=${l}`), 400, 'invalid_parameter');
            }
            expectError(await s.get('/api/events'), 400, 'missing_parameter');
            expectError(await s.get('/api/events?limit=5'), 400, 'missing_parameter');
            // the person still has their one event
            assert.equal((await s.person('qp-1')).events.length, 1);
        });

        it('unknown endpoints -> 404 not_found; a known path with another method -> 405 method_not_allowed', async () => {
            expectError(await s.get('/nope'), 404, 'not_found');
            expectError(await s.del('/api/people'), 405, 'method_not_allowed');
            expectError(await s.get('/api/people/a/explain'), 405, 'method_not_allowed');
            expectError(await s.post('/v1/unknown', { userId: 'u' }), 404, 'not_found');
            expectError(await s.get('/api/people/a/b'), 404, 'not_found');
            expectError(await s.get('/v1/track'), 405, 'method_not_allowed');
            expectError(await s.request('PUT', '/api/people/x', { body: {} }), 405, 'method_not_allowed');
            expectError(await s.post('/livez', {}), 405, 'method_not_allowed');
            expectError(await s.del('/api/schema'), 405, 'method_not_allowed');
            expectError(await s.get('/api/attributes/x'), 405, 'method_not_allowed');
        });
    });

    describe('body size limit (raw sockets)', () => {
        const head = (url, h) => requestHead('POST', url, { 'Content-Type': 'application/json', ...h });

        it('Content-Length over --max-body-bytes -> 413 body_too_large before the body is sent (Expect: 100-continue)', async () => {
            const url = s.url + '/v1/batch';
            const r = await rawHttp(url, head(url, { 'Content-Length': String(BODY_LIMIT + 1), Expect: '100-continue' }), { timeoutMs: 5000 });
            assert.equal(r.status, 413);
            assert.deepEqual(r.interim, [], 'no 100 Continue for a body that is refused');
            const e = JSON.parse(r.body).error;
            assert.equal(e.code, 'body_too_large');
            assert.match(e.message, new RegExp(String(BODY_LIMIT)));
        });

        it('Content-Length over the limit, headers only -> 413 without waiting for the body', async () => {
            const url = s.url + '/api/people';
            const r = await rawHttp(url, head(url, { 'Content-Length': '100000000' }), { timeoutMs: 5000 });
            assert.equal(r.status, 413);
            assert.equal(JSON.parse(r.body).error.code, 'body_too_large');
        });

        it('a body of exactly --max-body-bytes is accepted; one byte more is 413', async () => {
            const make = (n) => {
                const base = { user_id: 'sz-1', attributes: { pad: '' } };
                const pad = n - JSON.stringify(base).length;
                base.attributes.pad = 'p'.repeat(pad);
                const text = JSON.stringify(base);
                assert.equal(text.length, n);
                return text;
            };
            const url = s.url + '/api/people';
            const ok = make(BODY_LIMIT);
            const r1 = await rawHttp(url, [head(url, { 'Content-Length': String(ok.length) }), ok], { timeoutMs: 5000 });
            assert.equal(r1.status, 201, r1.body);
            const big = make(BODY_LIMIT + 1);
            const r2 = await rawHttp(url, [head(url, { 'Content-Length': String(big.length) }), big], { timeoutMs: 5000 });
            assert.equal(r2.status, 413);
        });

        it('a chunked body passing the limit -> 413 body_too_large, nothing applied, and the server keeps serving', async () => {
            const url = s.url + '/v1/track';
            const msg = JSON.stringify({ userId: 'ch-big', event: 'e', properties: { pad: 'x'.repeat(BODY_LIMIT) } });
            const parts = [head(url, { 'Transfer-Encoding': 'chunked' })];
            for (let i = 0; i < msg.length; i += 500) {
                const c = msg.slice(i, i + 500);
                parts.push(`${c.length.toString(16)}\r\n${c}\r\n`);
            }
            parts.push('0\r\n\r\n');
            const r = await rawHttp(url, parts, { gapMs: 10, timeoutMs: 5000 });
            assert.equal(r.status, 413);
            assert.equal(JSON.parse(r.body).error.code, 'body_too_large');
            assert.equal((await s.get('/api/people/ch-big')).status, 404);
        });

        it('a chunked body under the limit is read and applied', async () => {
            const url = s.url + '/v1/track';
            const msg = JSON.stringify({ userId: 'ch-ok', event: 'chunked_event', properties: { n: 1 } });
            const parts = [head(url, { 'Transfer-Encoding': 'chunked' })];
            for (let i = 0; i < msg.length; i += 20) {
                const c = msg.slice(i, i + 20);
                parts.push(`${c.length.toString(16)}\r\n${c}\r\n`);
            }
            parts.push('0\r\n\r\n');
            const r = await rawHttp(url, parts, { gapMs: 5, timeoutMs: 5000 });
            assert.equal(r.status, 200, r.body);
            assert.deepEqual(JSON.parse(r.body), { success: true });
            assert.deepEqual((await s.person('ch-ok')).event_counts, { chunked_event: 1 });
        });

        it('fetch: a batch over the limit is refused (413 or a reset) and nothing of it is applied', async () => {
            const batch = [];
            for (let i = 0; i < 40; i++) batch.push({ type: 'track', userId: 'fb-1', event: 'e', properties: { i } });
            let status;
            try {
                status = (await s.post('/v1/batch', { batch })).status;
            } catch {
                status = 'reset';
            }
            assert.ok(status === 413 || status === 'reset', `got ${status}`);
            assert.equal((await s.get('/api/people/fb-1')).status, 404);
        });
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});

describe('limits (--max-attributes 16 --max-event-types 3 --max-properties 4)', () => {
    let s;
    before(async () => {
        s = await startSegd(null, { args: ['--max-attributes', '16', '--max-event-types', '3', '--max-properties', '4'] });
    });
    after(async () => { if (s) await s.close(); });

    it('10 standard attributes + 6 more fill 16; the 17th -> 422 limit_attributes; nothing of that call applied', async () => {
        await s.track('identify', { userId: 'lim-1', traits: { a1: 1, a2: 2, a3: 3, a4: 4, a5: 5 } });
        const schema0 = (await s.get('/api/schema')).json;
        assert.equal(schema0.attributes.length, 15);
        assert.equal(schema0.attributes.filter((a) => a.standard).length, 10);
        await s.track('identify', { userId: 'lim-1', traits: { a6: 6 } });
        const r = await s.post('/v1/identify', { userId: 'lim-1', traits: { a1: 100, a7: 7 } });
        const e = expectError(r, 422, 'limit_attributes', { field: 'a7' });
        assert.match(e.message, /16/);
        const p = await s.person('lim-1');
        assert.equal(p.attributes.a1, 1);
        assert.equal(p.attributes.a7, undefined);
        // existing attributes can still be set
        await s.track('identify', { userId: 'lim-2', traits: { a1: 9, a6: 9 } });
        expectError(await s.post('/api/people', { user_id: 'lim-2', attributes: { a8: 1 } }), 422, 'limit_attributes', { field: 'a8' });
        expectError(await s.patch('/api/people/lim-2', { attributes: { a8: 1 } }), 422, 'limit_attributes', { field: 'a8' });
    });

    it('at the attribute limit, POST /api/attributes -> 422 limit_attributes', async () => {
        expectError(await s.post('/api/attributes', { name: 'a8', type: 'string' }), 422, 'limit_attributes');
    });

    it('at the attribute limit, a batch with a new attribute -> 400 invalid_batch naming it', async () => {
        const b = await s.post('/v1/batch', { batch: [{ type: 'identify', userId: 'lim-3', traits: { a1: 1 } }, { type: 'identify', userId: 'lim-3', traits: { a9: 1 } }] });
        const be = expectError(b, 400, 'invalid_batch', { index: 1 });
        assert.deepEqual(be.errors.map((x) => [x.index, x.field, x.code]), [[1, 'a9', 'limit_attributes']]);
        assert.equal((await s.get('/api/people/lim-3')).status, 404);
    });

    it('at the attribute limit, the first group call (attribute groups) -> 422 limit_attributes, not a store failure', async () => {
        const r = await s.post('/v1/group', { userId: 'lim-1', groupId: 'g' });
        expectError(r, 422, 'limit_attributes', { field: 'groups' });
        assert.equal((await s.person('lim-1')).attributes.groups, undefined);
    });

    it('deleting an attribute makes room again', async () => {
        assert.equal((await s.del('/api/attributes/a6')).status, 200);
        await s.track('identify', { userId: 'lim-1', traits: { a7: 7 } });
        assert.equal((await s.person('lim-1')).attributes.a7, 7);
    });

    it('ids longer than 512 bytes -> 400 invalid_field', async () => {
        expectError(await s.post('/v1/identify', { userId: 'x'.repeat(513) }), 400, 'invalid_field', { field: 'userId' });
        expectError(await s.post('/v1/track', { anonymousId: 'x'.repeat(513), event: 'one' }), 400, 'invalid_field', { field: 'anonymousId' });
        await s.track('identify', { userId: 'y'.repeat(512) });
    });

    it('a fourth event type -> 422 limit_event_types (page_view counts)', async () => {
        await s.track('track', { userId: 'lim-e', event: 'one' });
        await s.track('track', { userId: 'lim-e', event: 'two' });
        await s.track('page', { userId: 'lim-e', name: 'Home' });
        const r = await s.post('/v1/track', { userId: 'lim-e', event: 'three' });
        const e = expectError(r, 422, 'limit_event_types');
        assert.match(e.message, /3/);
        expectError(await s.post('/v1/screen', { userId: 'lim-e', name: 'S' }), 422, 'limit_event_types');
        // known types still work
        await s.track('track', { userId: 'lim-e', event: 'one' });
        assert.deepEqual((await s.person('lim-e')).event_counts, { one: 2, two: 1, page_view: 1 });
    });

    it('a fifth property of an event type -> 422 limit_properties', async () => {
        await s.track('track', { userId: 'lim-p', event: 'one', properties: { p1: 1, p2: 2, p3: 3 } });
        await s.track('track', { userId: 'lim-p', event: 'one', properties: { p4: 4 } });
        const r = await s.post('/v1/track', { userId: 'lim-p', event: 'one', properties: { p1: 1, p5: 5 } });
        expectError(r, 422, 'limit_properties', { field: 'p5' });
        // five new properties at once on a type with room for none
        const r2 = await s.post('/v1/track', { userId: 'lim-p', event: 'two', properties: { q1: 1, q2: 2, q3: 3, q4: 4, q5: 5 } });
        expectError(r2, 422, 'limit_properties');
        assert.deepEqual((await s.person('lim-p')).event_counts, { one: 2 });
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});
