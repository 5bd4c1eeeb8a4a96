// t0400 - identity: anonymous people, the anonymous merge on a message with userId +
// anonymousId, alias, and that merges survive a restart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSegd, metricValue } from './lib/segd.mjs';

describe('identity', () => {
    let s;
    before(async () => { s = await startSegd(null); });
    after(async () => { if (s) await s.close(); });

    it('a message with only anonymousId creates, then addresses, one anonymous person', async () => {
        await s.track('track', { anonymousId: 'an-1', event: 'visit', timestamp: '2024-01-01T00:00:00Z' });
        await s.track('page', { anonymousId: 'an-1', name: 'Home', timestamp: '2024-01-02T00:00:00Z' });
        await s.track('identify', { anonymousId: 'an-1', traits: { plan: 'free' }, timestamp: '2024-01-03T00:00:00Z' });
        const p = await s.person('an-1', { by: 'anonymous_id' });
        assert.equal(p.user_id, null);
        assert.deepEqual(p.anonymous_ids, ['an-1']);
        assert.deepEqual(p.event_counts, { visit: 1, page_view: 1 });
        assert.equal(p.attributes.plan, 'free');
        assert.equal(p.created_at, '2024-01-01T00:00:00.000Z');
        assert.equal(p.last_seen, '2024-01-03T00:00:00.000Z');
        assert.equal((await s.get('/api/people/an-1')).status, 404, 'an anonymous id is not a user id');
    });

    it('identify with userId + anonymousId of an anonymous person, no such user yet: the anonymous person becomes identified', async () => {
        await s.track('track', { anonymousId: 'an-2', event: 'visit', timestamp: '2024-02-01T00:00:00Z' });
        const anon = await s.person('an-2', { by: 'anonymous_id' });
        const m0 = metricValue(await s.metrics(), 'segd_people');
        await s.track('identify', { userId: 'us-2', anonymousId: 'an-2', traits: { email: 'us2@ex.com' }, timestamp: '2024-02-02T00:00:00Z' });
        const p = await s.person('us-2');
        assert.equal(p.id, anon.id, 'the same person, with the same id');
        assert.equal(p.user_id, 'us-2');
        assert.deepEqual(p.anonymous_ids, ['an-2']);
        assert.deepEqual(p.event_counts, { visit: 1 });
        assert.equal((await s.person('an-2', { by: 'anonymous_id' })).id, p.id);
        assert.equal(metricValue(await s.metrics(), 'segd_people'), m0, 'no person was added');
    });

    it('identify merges an anonymous person into an existing identified one: one person, both histories, identified values win', async () => {
        // the anonymous visitor
        await s.track('identify', { anonymousId: 'an-3', traits: { plan: 'free', color: 'blue', email: 'anon3@ex.com', tags: ['from-anon'] }, timestamp: '2024-03-05T00:00:00Z' });
        await s.track('track', { anonymousId: 'an-3', event: 'viewed_pricing', properties: { n: 1 }, timestamp: '2024-03-01T00:00:00Z' });
        await s.track('track', { anonymousId: 'an-3', event: 'viewed_pricing', properties: { n: 2 }, timestamp: '2024-03-02T00:00:00Z' });
        const anon = await s.person('an-3', { by: 'anonymous_id' });
        // the known user
        await s.track('identify', { userId: 'us-3', traits: { plan: 'pro', seats: 4 }, timestamp: '2024-03-03T00:00:00Z' });
        await s.track('track', { userId: 'us-3', event: 'purchase', properties: { amount: 99 }, timestamp: '2024-03-04T00:00:00Z' });
        const known = await s.person('us-3');
        assert.notEqual(known.id, anon.id);
        const people0 = metricValue(await s.metrics(), 'segd_people');

        await s.track('identify', { userId: 'us-3', anonymousId: 'an-3', timestamp: '2024-03-06T00:00:00Z' });

        const p = await s.person('us-3');
        assert.equal(p.id, known.id, 'the identified person stays');
        assert.equal(p.user_id, 'us-3');
        assert.deepEqual(p.anonymous_ids, ['an-3']);
        assert.deepEqual(p.event_counts, { viewed_pricing: 2, purchase: 1 });
        assert.deepEqual(p.events.map((e) => [e.event, e.timestamp]), [
            ['purchase', '2024-03-04T00:00:00.000Z'],
            ['viewed_pricing', '2024-03-02T00:00:00.000Z'],
            ['viewed_pricing', '2024-03-01T00:00:00.000Z'],
        ]);
        assert.equal(p.attributes.plan, 'pro', 'the identified person\'s value wins');
        assert.equal(p.attributes.seats, 4);
        assert.equal(p.attributes.color, 'blue', 'attributes the identified person lacked are copied');
        assert.equal(p.attributes.email, 'anon3@ex.com');
        assert.deepEqual(p.tags, ['from-anon']);
        assert.equal(p.created_at, '2024-03-01T00:00:00.000Z', 'the oldest of both');
        assert.equal(p.last_seen, '2024-03-06T00:00:00.000Z', 'the newest of both');

        // the anonymous id (and the email it brought) now resolve to the identified person
        assert.equal((await s.person('an-3', { by: 'anonymous_id' })).id, known.id);
        assert.equal((await s.person('anon3@ex.com', { by: 'email' })).id, known.id);
        const evs = await s.allEvents({ anonymous_id: 'an-3' });
        assert.equal(evs.length, 3);
        // the anonymous person is gone
        assert.equal((await s.get(`/api/people/${anon.id}?by=id`)).status, 404);
        assert.equal(metricValue(await s.metrics(), 'segd_people'), people0 - 1);
        // later anonymous messages land on the identified person
        await s.track('track', { anonymousId: 'an-3', event: 'late', timestamp: '2024-03-07T00:00:00Z' });
        assert.deepEqual((await s.person('us-3')).event_counts, { viewed_pricing: 2, purchase: 1, late: 1 });
    });

    it('a track (not only identify) with userId + anonymousId merges too', async () => {
        await s.track('track', { anonymousId: 'an-4', event: 'a', timestamp: '2024-04-01T00:00:00Z' });
        await s.track('track', { userId: 'us-4', event: 'b', timestamp: '2024-04-02T00:00:00Z' });
        await s.track('track', { userId: 'us-4', anonymousId: 'an-4', event: 'c', timestamp: '2024-04-03T00:00:00Z' });
        const p = await s.person('us-4');
        assert.deepEqual(p.event_counts, { a: 1, b: 1, c: 1 });
        assert.equal((await s.person('an-4', { by: 'anonymous_id' })).id, p.id);
    });

    it('an anonymousId that belongs to an identified person is not merged into another user', async () => {
        await s.track('identify', { userId: 'us-5', anonymousId: 'an-5', traits: { plan: 'five' } });
        await s.track('identify', { userId: 'us-6', anonymousId: 'an-5', traits: { plan: 'six' } });
        const p5 = await s.person('us-5');
        const p6 = await s.person('us-6');
        assert.notEqual(p5.id, p6.id);
        assert.equal(p5.attributes.plan, 'five');
        assert.equal(p6.attributes.plan, 'six');
        assert.equal((await s.person('an-5', { by: 'anonymous_id' })).id, p5.id);
    });

    it('one person collects several anonymous ids', async () => {
        await s.track('track', { anonymousId: 'an-7a', event: 'x' });
        await s.track('track', { anonymousId: 'an-7b', event: 'x' });
        await s.track('identify', { userId: 'us-7', anonymousId: 'an-7a' });
        await s.track('identify', { userId: 'us-7', anonymousId: 'an-7b' });
        await s.track('identify', { userId: 'us-7', anonymousId: 'an-7c' });
        const p = await s.person('us-7');
        assert.deepEqual([...p.anonymous_ids].sort(), ['an-7a', 'an-7b', 'an-7c']);
        assert.deepEqual(p.event_counts, { x: 2 });
        for (const a of ['an-7a', 'an-7b', 'an-7c']) assert.equal((await s.person(a, { by: 'anonymous_id' })).id, p.id);
    });

    it('alias with an anonymous previousId merges it into the person with userId', async () => {
        await s.track('identify', { anonymousId: 'an-8', traits: { color: 'green', plan: 'anon' }, timestamp: '2024-05-01T00:00:00Z' });
        await s.track('track', { anonymousId: 'an-8', event: 'a8', timestamp: '2024-05-02T00:00:00Z' });
        await s.track('identify', { userId: 'us-8', traits: { plan: 'pro' }, timestamp: '2024-05-03T00:00:00Z' });
        const known = await s.person('us-8');
        const r = await s.post('/v1/alias', { previousId: 'an-8', userId: 'us-8', timestamp: '2024-05-04T00:00:00Z' });
        assert.equal(r.status, 200);
        assert.deepEqual(r.json, { success: true });
        const p = await s.person('us-8');
        assert.equal(p.id, known.id);
        assert.deepEqual(p.event_counts, { a8: 1 });
        assert.equal(p.attributes.plan, 'pro');
        assert.equal(p.attributes.color, 'green');
        assert.deepEqual(p.anonymous_ids, ['an-8']);
        assert.equal((await s.person('an-8', { by: 'anonymous_id' })).id, known.id);
        assert.equal(p.created_at, '2024-05-01T00:00:00.000Z');
    });

    it('alias with a previous user id merges that person into the person with userId', async () => {
        await s.track('identify', { userId: 'old-9', traits: { legacy: true, plan: 'old' } });
        await s.track('track', { userId: 'old-9', event: 'e9' });
        await s.track('identify', { userId: 'us-9', traits: { plan: 'new' } });
        const known = await s.person('us-9');
        const people0 = metricValue(await s.metrics(), 'segd_people');
        await s.track('alias', { previousId: 'old-9', userId: 'us-9' });
        const p = await s.person('us-9');
        assert.equal(p.id, known.id);
        assert.deepEqual(p.event_counts, { e9: 1 });
        assert.equal(p.attributes.plan, 'new');
        assert.equal(p.attributes.legacy, true);
        assert.equal(metricValue(await s.metrics(), 'segd_people'), people0 - 1);
    });

    it('alias when nobody has userId yet: the previous person takes it', async () => {
        await s.track('track', { anonymousId: 'an-10', event: 'e10' });
        const anon = await s.person('an-10', { by: 'anonymous_id' });
        await s.track('alias', { previousId: 'an-10', userId: 'us-10' });
        const p = await s.person('us-10');
        assert.equal(p.id, anon.id);
        assert.deepEqual(p.anonymous_ids, ['an-10']);
        assert.deepEqual(p.event_counts, { e10: 1 });
    });

    it('merges survive a restart', async () => {
        await s.stop('SIGTERM');
        await s.restart();
        const p = await s.person('us-3');
        assert.deepEqual(p.event_counts, { viewed_pricing: 2, purchase: 1, late: 1 });
        assert.equal(p.attributes.plan, 'pro');
        assert.equal(p.attributes.color, 'blue');
        assert.equal((await s.person('an-3', { by: 'anonymous_id' })).id, p.id);
        assert.equal((await s.person('an-8', { by: 'anonymous_id' })).user_id, 'us-8');
        assert.equal((await s.person('an-10', { by: 'anonymous_id' })).user_id, 'us-10');
        assert.deepEqual((await s.person('us-9')).event_counts, { e9: 1 });
    });

    it('exits 0 on SIGTERM with no sanitizer report', async () => {
        const r = await s.stop('SIGTERM');
        assert.deepEqual(r, { code: 0, signal: null });
    });
});
