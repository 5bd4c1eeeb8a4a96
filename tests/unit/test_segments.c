/* test_segments.c - unit tests of the segment set (src/segments/segments.c): create,
 * edit (with and without backfill), delete and its guard, names, cycles, membership
 * kept exact by person changes in dependency order, erasure, full recomputation as the
 * clock moves, snapshots, rebinding. segments_check runs after every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/engine.h"
#include "filter/filter.h"
#include "segments/segments.h"

#define NOW 1780000000000LL
#define DAY 86400000LL

typedef struct fixture {
    engine *e;
    segments *s;
    person_id p[4];
    int purchase, amount, plan;
} fixture;

static segd_value sv(const char *s) { return (segd_value){ .type = SEGD_T_STRING, .str = s, .str_len = strlen(s) }; }

static void buy(fixture *f, int who, int64_t t, double amount)
{
    segd_value v = { .type = SEGD_T_NUMBER, .number = amount };
    assert_true(engine_event_append(f->e, f->p[who], f->purchase, t, 1, &f->amount, &v) >= 0);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->e = engine_new(NULL);
    f->s = segments_new();
    f->plan = engine_attr_declare(f->e, "plan", SEGD_T_STRING);
    f->purchase = engine_event_type_declare(f->e, "purchase");
    f->amount = engine_prop_declare(f->e, f->purchase, "amount", SEGD_T_NUMBER);
    const char *plans[4] = { "pro", "free", "pro", "free" };
    for (int i = 0; i < 4; i++) {
        f->p[i] = engine_person_create(f->e, 100 + (uint64_t)i);
        segd_value v = sv(plans[i]);
        assert_int_equal(engine_attr_set(f->e, f->p[i], f->plan, &v), 0);
        segd_value seen = { .type = SEGD_T_DATETIME, .time_ms = NOW - (int64_t)i * 20 * DAY };
        assert_int_equal(engine_attr_set(f->e, f->p[i], ATTR_LAST_SEEN, &seen), 0);
    }
    /* p0: 3 purchases; p1: one of 600; p2: 2 purchases; p3: none */
    buy(f, 0, NOW - DAY, 10);
    buy(f, 0, NOW - 2 * DAY, 10);
    buy(f, 0, NOW - 3 * DAY, 10);
    buy(f, 1, NOW - DAY, 600);
    buy(f, 2, NOW - DAY, 5);
    buy(f, 2, NOW - 40 * DAY, 5);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    segments_free(f->s);
    engine_free(f->e);
    free(f);
    return 0;
}

static filter_node *parse(const char *text)
{
    segd_error err;
    segd_error_clear(&err);
    filter_node *t = filter_parse_text(text, strlen(text), NULL, &err);
    if (!t) fail_msg("parse %s: %s %s", text, err.code, err.message);
    return t;
}

/* Creates a segment from text; returns its slot, id in id. */
static int create(fixture *f, const char *name, const char *text, int backfill, char *id, seg_transitions *out)
{
    filter_node *t = parse(text);
    segment_input in = { .name = name, .description = "d", .filter = t, .created_by = "test" };
    segd_error err;
    segd_error_clear(&err);
    size_t before = out->n;
    int slot = segments_create(f->s, f->e, &in, NOW, backfill, id, out, &err);
    filter_free(t);
    if (slot < 0) fail_msg("create %s: %s %s", name, err.code, err.message);
    /* every new member is in out: logged with backfill, silent without */
    for (size_t i = before; i < out->n; i++) {
        assert_int_equal(out->v[i].silent, !backfill);
        assert_int_equal(out->v[i].cause, SEG_CAUSE_DEFINITION);
    }
    if (!backfill) out->n = before;   /* the tests below count logged transitions */
    assert_int_equal(segments_check(f->s, f->e), 0);
    return slot;
}

/* The members of slot as a string of fixture indexes ("01"). */
static void members(fixture *f, int slot, char *buf)
{
    buf[0] = 0;
    for (int i = 0; i < 4; i++)
        if (segments_is_member(f->s, slot, f->p[i], 0)) buf[strlen(buf) + 1] = 0, buf[strlen(buf)] = (char)('0' + i);
}

/* Transitions that are logged (not a silent definition change). */
static size_t logged(const seg_transitions *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) n += !t->v[i].silent;
    return n;
}

static const char *HIGH_VALUE = "count(purchase) >= 3 or sum(purchase.amount) >= 500";

static void test_create_and_backfill(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1], buf[16];
    seg_transitions out = { 0 };
    int a = create(f, "High-Value Customer", HIGH_VALUE, 0, id, &out);
    assert_int_equal(logged(&out), 0);   /* joined silently, cause definition */
    members(f, a, buf);
    assert_string_equal(buf, "01");
    assert_int_equal(strncmp(id, "seg_", 4), 0);
    assert_int_equal(strlen(id), SEGMENT_ID_LEN);
    assert_int_equal(segments_find(f->s, id), a);
    segment_view v;
    assert_int_equal(segments_view(f->s, a, &v), 1);
    assert_string_equal(v.name, "High-Value Customer");
    assert_int_equal(v.size, 2);
    assert_int_equal(v.refresh_ms, SEGMENT_DEFAULT_REFRESH_MS);

    int b = create(f, "Pro", "plan = \"pro\"", 1, id, &out);
    assert_int_equal(out.n, 2);
    for (size_t i = 0; i < out.n; i++) {
        assert_int_equal(out.v[i].segment, b);
        assert_int_equal(out.v[i].dir, SEG_ENTERED);
        assert_int_equal(out.v[i].cause, SEG_CAUSE_DEFINITION);
    }
    seg_transitions_release(&out);
}

static void test_bad_definitions(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1];
    seg_transitions out = { 0 };
    create(f, "A", "plan = \"pro\"", 0, id, &out);
    segd_error err;
    segd_error_clear(&err);
    filter_node *t = parse("plan = \"free\"");
    segment_input in = { .name = "A", .filter = t };
    assert_true(segments_create(f->s, f->e, &in, NOW, 0, id, &out, &err) < 0);
    assert_string_equal(err.code, "name_taken");
    assert_int_equal(err.status, 409);
    in.name = "";
    segd_error_clear(&err);
    assert_true(segments_create(f->s, f->e, &in, NOW, 0, id, &out, &err) < 0);
    assert_string_equal(err.code, "invalid_name");
    filter_free(t);
    t = parse("plna = \"x\"");
    in.name = "B";
    in.filter = t;
    segd_error_clear(&err);
    assert_true(segments_create(f->s, f->e, &in, NOW, 0, id, &out, &err) < 0);
    assert_string_equal(err.code, "unknown_attribute");
    filter_free(t);
    t = parse("in segment \"seg_nosuchthing0\"");
    in.filter = t;
    segd_error_clear(&err);
    assert_true(segments_create(f->s, f->e, &in, NOW, 0, id, &out, &err) < 0);
    assert_string_equal(err.code, "unknown_segment");
    filter_free(t);
    assert_int_equal(segments_check(f->s, f->e), 0);
    assert_int_equal(out.n, 0);
    seg_transitions_release(&out);
}

static void test_changes_in_dependency_order(void **state)
{
    fixture *f = *state;
    char hv[SEGMENT_ID_LEN + 1], id[SEGMENT_ID_LEN + 1], text[128], buf[16];
    seg_transitions out = { 0 };
    /* B reads A; created after A, but evaluated after it in any case */
    int a = create(f, "High-Value", HIGH_VALUE, 0, hv, &out);
    snprintf(text, sizeof text, "in segment \"%s\" and plan = \"pro\"", hv);
    int b = create(f, "Pro High-Value", text, 0, id, &out);
    members(f, b, buf);
    assert_string_equal(buf, "0");
    /* p2 buys a third time: enters A, then B */
    buy(f, 2, NOW, 1);
    seg_change what = { .types = &f->purchase, .n_types = 1 };
    segments_person_changed(f->s, f->e, f->p[2], &what, NOW, SEG_CAUSE_WRITE, &out);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.v[0].segment, a);
    assert_int_equal(out.v[1].segment, b);
    assert_int_equal(out.v[0].dir, SEG_ENTERED);
    assert_int_equal(out.v[0].cause, SEG_CAUSE_WRITE);
    assert_int_equal(out.v[0].person, f->p[2]);
    assert_int_equal(segments_check(f->s, f->e), 0);
    /* a change of something no segment reads re-checks nothing */
    out.n = 0;
    int attr = ATTR_CITY;
    seg_change other = { .attrs = &attr, .n_attrs = 1 };
    segments_person_changed(f->s, f->e, f->p[3], &other, NOW, SEG_CAUSE_WRITE, &out);
    assert_int_equal(out.n, 0);
    /* p0 leaves pro: exits B only */
    segd_value free_plan = sv("free");
    assert_int_equal(engine_attr_set(f->e, f->p[0], f->plan, &free_plan), 0);
    seg_change plan = { .attrs = &f->plan, .n_attrs = 1 };
    segments_person_changed(f->s, f->e, f->p[0], &plan, NOW, SEG_CAUSE_WRITE, &out);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.v[0].segment, b);
    assert_int_equal(out.v[0].dir, SEG_EXITED);
    /* erasure: p1 exits everything */
    out.n = 0;
    assert_int_equal(engine_person_erase(f->e, f->p[1]), 0);
    seg_change all = { .all = 1 };
    segments_person_changed(f->s, f->e, f->p[1], &all, NOW, SEG_CAUSE_ERASURE, &out);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.v[0].segment, a);
    assert_int_equal(out.v[0].cause, SEG_CAUSE_ERASURE);
    assert_int_equal(segments_check(f->s, f->e), 0);
    seg_transitions_release(&out);
}

static void test_cycles_and_delete_guard(void **state)
{
    fixture *f = *state;
    char a_id[SEGMENT_ID_LEN + 1], b_id[SEGMENT_ID_LEN + 1], text[128];
    seg_transitions out = { 0 };
    int a = create(f, "A", "plan = \"pro\"", 0, a_id, &out);
    snprintf(text, sizeof text, "in cached segment \"%s\"", a_id);
    create(f, "B", text, 0, b_id, &out);
    /* A naming B closes a cycle (in_cached counts too): refused, A unchanged */
    snprintf(text, sizeof text, "not in segment \"%s\"", b_id);
    filter_node *t = parse(text);
    segment_input in = { .name = "A", .filter = t };
    segd_error err;
    segd_error_clear(&err);
    assert_true(segments_update(f->s, f->e, a_id, &in, NOW, 0, &out, &err) < 0);
    assert_string_equal(err.code, "segment_cycle");
    assert_non_null(strstr(err.message, "\"B\""));
    filter_free(t);
    segment_view v;
    segments_view(f->s, a, &v);
    assert_int_equal(v.filter->kind, FILTER_ATTRIBUTE);
    assert_int_equal(segments_check(f->s, f->e), 0);
    /* A is used by B: not deleted */
    segd_error_clear(&err);
    assert_int_equal(segments_delete(f->s, a_id, &err), SEGD_ECONFLICT);
    assert_string_equal(err.code, "segment_in_use");
    segd_error_clear(&err);
    assert_int_equal(segments_delete(f->s, b_id, &err), 0);
    assert_int_equal(segments_delete(f->s, a_id, &err), 0);
    assert_int_equal(segments_find(f->s, a_id), -1);
    segd_error_clear(&err);
    assert_int_equal(segments_delete(f->s, a_id, &err), SEGD_ENOTFOUND);
    assert_int_equal(segments_check(f->s, f->e), 0);
    seg_transitions_release(&out);
}

static void test_update_with_and_without_backfill(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1], buf[16];
    seg_transitions out = { 0 };
    int a = create(f, "Pro", "plan = \"pro\"", 0, id, &out);
    assert_int_equal(out.n, 0);
    filter_node *t = parse("plan = \"free\"");
    segment_input in = { .name = "Free now", .filter = t };
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(segments_update(f->s, f->e, id, &in, NOW + 1, 1, &out, &err), a);
    members(f, a, buf);
    assert_string_equal(buf, "13");
    assert_int_equal(out.n, 4);   /* 0 and 2 exited, 1 and 3 entered */
    int entered = 0;
    for (size_t i = 0; i < out.n; i++) entered += out.v[i].dir == SEG_ENTERED;
    assert_int_equal(entered, 2);
    segment_view v;
    segments_view(f->s, a, &v);
    assert_string_equal(v.name, "Free now");
    assert_string_equal(v.created_by, "test");
    assert_int_equal(v.created_at, NOW);
    assert_int_equal(v.updated_at, NOW + 1);
    filter_free(t);
    /* without backfill members change silently */
    out.n = 0;
    t = parse("plan is set");
    in.filter = t;
    assert_int_equal(segments_update(f->s, f->e, id, &in, NOW + 2, 0, &out, &err), a);
    assert_int_equal(logged(&out), 0);
    assert_true(out.n > 0 && out.v[0].silent);
    members(f, a, buf);
    assert_string_equal(buf, "0123");
    filter_free(t);
    assert_int_equal(segments_check(f->s, f->e), 0);
    seg_transitions_release(&out);
}

/* Editing a segment re-evaluates the segments that name it, directly or through
 * another: their definitions stay, but what they read changed. Their changes are
 * reported as the edit's are (here with backfill: logged, cause definition). */
static void test_update_reaches_segments_that_name_it(void **state)
{
    fixture *f = *state;
    char a_id[SEGMENT_ID_LEN + 1], b_id[SEGMENT_ID_LEN + 1], c_id[SEGMENT_ID_LEN + 1], text[128], buf[16];
    seg_transitions out = { 0 };
    int a = create(f, "Pro", "plan = \"pro\"", 0, a_id, &out);
    snprintf(text, sizeof text, "in segment \"%s\"", a_id);
    int b = create(f, "In Pro", text, 0, b_id, &out);
    snprintf(text, sizeof text, "not in segment \"%s\"", b_id);
    int c = create(f, "Not in In Pro", text, 0, c_id, &out);
    members(f, b, buf);
    assert_string_equal(buf, "02");
    members(f, c, buf);
    assert_string_equal(buf, "13");

    filter_node *t = parse("plan = \"free\"");
    segment_input in = { .name = "Pro", .filter = t };
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(segments_update(f->s, f->e, a_id, &in, NOW + 1, 1, &out, &err), a);
    filter_free(t);
    members(f, a, buf);
    assert_string_equal(buf, "13");
    members(f, b, buf);
    assert_string_equal(buf, "13");
    members(f, c, buf);
    assert_string_equal(buf, "02");
    int per_slot[3] = { 0 };
    for (size_t i = 0; i < out.n; i++) {
        assert_int_equal(out.v[i].cause, SEG_CAUSE_DEFINITION);
        assert_false(out.v[i].silent);
        assert_int_equal(out.v[i].at, NOW + 1);
        per_slot[out.v[i].segment == a ? 0 : out.v[i].segment == b ? 1 : 2]++;
    }
    assert_int_equal(per_slot[0], 4);
    assert_int_equal(per_slot[1], 4);
    assert_int_equal(per_slot[2], 4);
    assert_int_equal(segments_check(f->s, f->e), 0);
    seg_transitions_release(&out);
}

static void test_clock_and_snapshot(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1], buf[16], text[128];
    seg_transitions out = { 0 };
    /* last_seen of p_i is NOW - 20i days */
    int a = create(f, "Dormant", "last_seen more than 30d ago", 0, id, &out);
    members(f, a, buf);
    assert_string_equal(buf, "23");
    segments_snapshot(f->s, a, NOW);
    snprintf(text, sizeof text, "in cached segment \"%s\"", id);
    int b = create(f, "Was dormant", text, 0, id, &out);
    /* 15 days later p1 (last seen 20 days before NOW) passes 30 days */
    segments_recompute_all(f->s, f->e, NOW + 15 * DAY, SEG_CAUSE_CLOCK, &out);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.v[0].segment, a);
    assert_int_equal(out.v[0].person, f->p[1]);
    assert_int_equal(out.v[0].cause, SEG_CAUSE_CLOCK);
    assert_int_equal(out.v[0].at, NOW + 15 * DAY);
    members(f, b, buf);
    assert_string_equal(buf, "23");   /* the snapshot did not move */
    segment_view v;
    segments_view(f->s, a, &v);
    assert_int_equal(v.size, 3);
    assert_int_equal(v.cached_size, 2);
    assert_int_equal(v.cached_at, NOW);
    assert_int_equal(segments_check(f->s, f->e), 0);
    /* an edit that no longer depends on time drops its schedule */
    assert_true(segments_scheduled(f->s) > 0);
    filter_node *t = parse("plan = \"pro\"");
    segment_input in = { .name = "Dormant", .filter = t };
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(segments_update(f->s, f->e, v.id, &in, NOW + 15 * DAY, 0, &out, &err), a);
    filter_free(t);
    assert_int_equal(segments_scheduled(f->s), 0);
    out.n = 0;
    assert_int_equal(segments_run_due(f->s, f->e, NOW + 400 * DAY, &out), 0);
    assert_int_equal(out.n, 0);
    seg_transitions_release(&out);
}

static void test_rebind_and_attribute_use(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1];
    seg_transitions out = { 0 };
    int a = create(f, "Pro", "plan = \"pro\"", 0, id, &out);
    int slot = -1;
    assert_int_equal(segments_use_attribute(f->s, f->plan, &slot), 1);
    assert_int_equal(slot, a);
    assert_int_equal(segments_use_attribute(f->s, ATTR_CITY, &slot), 0);
    /* a new attribute changes nothing for the filter */
    assert_true(engine_attr_declare(f->e, "seats", SEGD_T_NUMBER) >= 0);
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(segments_rebind(f->s, f->e, &err), 0);
    /* dropping the attribute it reads makes it unbindable */
    assert_int_equal(engine_attr_drop(f->e, f->plan), 0);
    assert_int_equal(segments_rebind(f->s, f->e, &err), SEGD_ECONFLICT);
    assert_string_equal(err.code, "used_by_segment");
    assert_non_null(strstr(err.message, "\"Pro\""));
    seg_transitions_release(&out);
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The clock, against full evaluation: random people, purchases and writes, time-relative
 * segments, the clock moved in random steps for 90 days. After every step the members
 * equal filter_eval at that time, and every clock transition happened at the exact
 * moment the answer flipped (the filter says `was` 1 ms before and `is` at it). */
/* What a restart does: restore the stored definition, members and snapshot into a new
 * set, then recompute: only real differences come out. Also preview and erasure from
 * snapshots. */
static void test_restore_preview_forget(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1], buf[16];
    seg_transitions out = { 0 };
    int a = create(f, "Pro", "plan = \"pro\"", 0, id, &out);
    segments_snapshot(f->s, a, NOW);
    size_t len = 0;
    void *snap = segments_snapshot_serialize(f->s, a, &len);
    assert_non_null(snap);
    assert_null(segments_snapshot_serialize(f->s, a + 1, &len));

    segments *again = segments_new();
    filter_node *t = parse("plan = \"pro\"");
    segment_input in = { .name = "Pro", .description = "d", .filter = t, .created_by = "test" };
    segd_error err;
    segd_error_clear(&err);
    uint32_t stored[2] = { f->p[0], f->p[1] };   /* p1 was stored as a member, p2 not */
    int r = segments_restore(again, f->e, id, &in, NOW - 5, NOW - 1, stored, 2, NOW, snap, len, &err);
    assert_true(r >= 0);
    segment_view v;
    assert_int_equal(segments_view(again, r, &v), 1);
    assert_string_equal(v.id, id);
    assert_int_equal(v.created_at, NOW - 5);
    assert_int_equal(v.updated_at, NOW - 1);
    assert_int_equal(v.size, 2);
    assert_int_equal(v.cached_size, 2);
    assert_int_equal(v.cached_at, NOW);
    assert_true(segments_restore(again, f->e, id, &in, NOW, NOW, NULL, 0, 0, NULL, 0, &err) < 0);
    segments_recompute_all(again, f->e, NOW, SEG_CAUSE_CLOCK, &out);
    assert_int_equal(out.n, 2);
    for (size_t i = 0; i < out.n; i++) {
        assert_int_equal(out.v[i].cause, SEG_CAUSE_CLOCK);
        assert_int_equal(out.v[i].silent, 0);
        assert_int_equal(out.v[i].person, out.v[i].dir == SEG_ENTERED ? f->p[2] : f->p[1]);
    }
    members(&(fixture){ .s = again, .e = f->e, .p = { f->p[0], f->p[1], f->p[2], f->p[3] } }, r, buf);
    assert_string_equal(buf, "02");
    assert_int_equal(segments_check(again, f->e), 0);

    /* preview: switching to free would let 1 and 3 in and 0 and 2 out */
    filter_node *free_plan = parse("plan = \"free\"");
    uint64_t n_in, n_out;
    person_id s_in[1], s_out[4];
    size_t k_in, k_out;
    assert_int_equal(segments_preview(again, f->e, r, free_plan, NOW, &n_in, &n_out, s_in, &k_in, s_out, &k_out, 1, &err), 0);
    assert_int_equal(n_in, 2);
    assert_int_equal(n_out, 2);
    assert_int_equal(k_in, 1);
    assert_int_equal(s_in[0], f->p[1]);
    /* a preview that would name the segment itself is a cycle */
    char text[64];
    snprintf(text, sizeof text, "in segment \"%s\"", id);
    filter_node *self = parse(text);
    assert_true(segments_preview(again, f->e, r, self, NOW, &n_in, &n_out, s_in, &k_in, s_out, &k_out, 1, &err) < 0);
    assert_string_equal(err.code, "segment_cycle");
    members(&(fixture){ .s = again, .e = f->e, .p = { f->p[0], f->p[1], f->p[2], f->p[3] } }, r, buf);
    assert_string_equal(buf, "02");

    /* erasure leaves the snapshots */
    int slots[4];
    assert_int_equal(segments_forget_person(again, f->p[0], slots), 1);
    assert_int_equal(slots[0], r);
    assert_int_equal(segments_is_member(again, r, f->p[0], 1), 0);
    assert_int_equal(segments_forget_person(again, f->p[0], slots), 0);

    filter_free(self);
    filter_free(free_plan);
    filter_free(t);
    free(snap);
    segments_free(again);
    seg_transitions_release(&out);
}

/* Moments far ahead (past the calendar's six months) and moments behind a clock set
 * back come out at their exact time. */
static void test_clock_far_and_back(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1], buf[16];
    seg_transitions out = { 0 };
    /* last_seen of p_i is NOW - 20i days: p0 passes 400 days at NOW + 400d + 1 ms */
    int a = create(f, "Gone a long time", "last_seen more than 400d ago", 0, id, &out);
    members(f, a, buf);
    assert_string_equal(buf, "");
    /* a segment with earlier moments, deleted: its buckets must not hide the later ones */
    char early[SEGMENT_ID_LEN + 1];
    int w = create(f, "Gone a while", "last_seen more than 70d ago", 0, early, &out);
    assert_int_equal(segments_next_due(f->s), NOW - 60 * DAY + 70 * DAY + 1);
    assert_int_equal(segments_run_due(f->s, f->e, NOW - 60 * DAY + 70 * DAY + 1, &out), 1);   /* p3, on time */
    assert_int_equal(out.n, 1);
    assert_int_equal(out.v[0].segment, w);
    assert_int_equal(out.v[0].person, f->p[3]);
    out.n = 0;
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(segments_delete(f->s, early, &err), 0);
    assert_int_equal(segments_next_due(f->s), NOW - 60 * DAY + 400 * DAY + 1);   /* p3 first */
    assert_int_equal(segments_run_due(f->s, f->e, NOW + 100 * DAY, &out), 0);
    assert_int_equal(out.n, 0);
    segments_run_due(f->s, f->e, NOW - 60 * DAY + 400 * DAY, &out);
    assert_int_equal(out.n, 0);                        /* one millisecond early */
    segments_run_due(f->s, f->e, NOW + 400 * DAY + 1, &out);
    assert_int_equal(out.n, 4);
    for (size_t i = 1; i < out.n; i++) assert_true(out.v[i - 1].at <= out.v[i].at);
    assert_int_equal(out.v[0].person, f->p[3]);
    assert_int_equal(out.v[0].at, NOW - 60 * DAY + 400 * DAY + 1);
    assert_int_equal(out.v[3].person, f->p[0]);
    assert_int_equal(out.v[3].at, NOW + 400 * DAY + 1);
    members(f, a, buf);
    assert_string_equal(buf, "0123");
    /* a person seen again is scheduled behind where the clock got to (a clock set
     * back, as tests do): the moment still comes out when the clock reaches it */
    segd_value seen = { .type = SEGD_T_DATETIME, .time_ms = NOW };
    assert_int_equal(engine_attr_set(f->e, f->p[0], ATTR_LAST_SEEN, &seen), 0);
    int attr = ATTR_LAST_SEEN;
    seg_change what = { .attrs = &attr, .n_attrs = 1 };
    out.n = 0;
    segments_person_changed(f->s, f->e, f->p[0], &what, NOW + 10 * DAY, SEG_CAUSE_WRITE, &out);
    assert_int_equal(out.n, 1);                        /* p0 left */
    assert_int_equal(out.v[0].dir, SEG_EXITED);
    out.n = 0;
    assert_int_equal(segments_next_due(f->s), NOW + 400 * DAY + 1);
    segments_run_due(f->s, f->e, NOW + 400 * DAY + 1, &out);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.v[0].person, f->p[0]);
    assert_int_equal(out.v[0].at, NOW + 400 * DAY + 1);
    assert_int_equal(segments_check(f->s, f->e), 0);
    seg_transitions_release(&out);
}

static void test_clock_matches_full_evaluation(void **state)
{
    (void)state;
    uint64_t rng = 12345;
#define RND() xorshift(&rng)
    engine *e = engine_new(NULL);
    segments *s = segments_new();
    int purchase = engine_event_type_declare(e, "purchase");
    int amount = engine_prop_declare(e, purchase, "amount", SEGD_T_NUMBER);
    enum { PEOPLE = 150 };
    for (int i = 0; i < PEOPLE; i++) {
        person_id p = engine_person_create(e, 1 + (uint64_t)i);
        segd_value seen = { .type = SEGD_T_DATETIME, .time_ms = NOW - (int64_t)(RND() % (60 * DAY)) };
        if (RND() % 5) assert_int_equal(engine_attr_set(e, p, ATTR_LAST_SEEN, &seen), 0);
        for (int k = (int)(RND() % 4); k > 0; k--) {
            segd_value v = { .type = SEGD_T_NUMBER, .number = (double)(RND() % 100) };
            int64_t t = NOW - (int64_t)(RND() % (30 * DAY));
            if (RND() % 4 == 0) t += (int64_t)(RND() % (35 * DAY));   /* some in the future */
            assert_true(engine_event_append(e, p, purchase, t, 1, &amount, &v) >= 0);
        }
    }
    const char *texts[] = {
        "last_seen more than 30d ago",
        "count(purchase, within 7d) >= 1",
        "last_seen less than 3d ago or count(purchase where amount > 50, within 14d) >= 2",
        "first_at(purchase) more than 20d ago and not last_at(purchase) less than 2d ago",
        "sum(purchase.amount, within 10d) >= 100",
    };
    enum { N = sizeof texts / sizeof texts[0] };
    int slots[N];
    seg_transitions out = { 0 };
    for (int i = 0; i < (int)N; i++) {
        char id[SEGMENT_ID_LEN + 1], name[16];
        snprintf(name, sizeof name, "T%d", i);
        filter_node *t = parse(texts[i]);
        segment_input in = { .name = name, .filter = t };
        segd_error err;
        segd_error_clear(&err);
        slots[i] = segments_create(s, e, &in, NOW, 0, id, &out, &err);
        assert_true(slots[i] >= 0);
        filter_free(t);
    }
    assert_true(segments_scheduled(s) > 0);
    size_t words = filter_words(e);
    uint64_t *bits = xcalloc(words, sizeof *bits);
    int64_t now = NOW;
    size_t flips = 0;
    for (int step = 0; step < 120; step++) {
        int64_t before = now;
        uint64_t span = RND() % 2 ? 60 * 60000 : 2 * DAY;
        now += (int64_t)(RND() % span) + 1;
        out.n = 0;
        segments_run_due(s, e, now, &out);
        for (size_t k = 0; k < out.n; k++) {
            seg_transition *x = &out.v[k];
            assert_int_equal(x->cause, SEG_CAUSE_CLOCK);
            assert_true(x->at > before && x->at <= now);
            segment_view v;
            segments_view(s, x->segment, &v);
            filter_env at = { .e = e, .now_ms = x->at }, just_before = { .e = e, .now_ms = x->at - 1 };
            assert_int_equal(filter_match(v.filter, &at, x->person), x->dir == SEG_ENTERED);
            assert_int_equal(filter_match(v.filter, &just_before, x->person), x->dir == SEG_EXITED);
        }
        flips += out.n;
        /* a write now and then: a purchase for someone, as ingest would report it */
        if (RND() % 3 == 0) {
            person_id p = (person_id)(RND() % PEOPLE);
            segd_value v = { .type = SEGD_T_NUMBER, .number = (double)(RND() % 100) };
            assert_true(engine_event_append(e, p, purchase, now, 1, &amount, &v) >= 0);
            segd_value seen = { .type = SEGD_T_DATETIME, .time_ms = now };
            assert_int_equal(engine_attr_set(e, p, ATTR_LAST_SEEN, &seen), 0);
            int attr = ATTR_LAST_SEEN;
            seg_change what = { .attrs = &attr, .n_attrs = 1, .types = &purchase, .n_types = 1 };
            segments_person_changed(s, e, p, &what, now, SEG_CAUSE_WRITE, &out);
        }
        for (int i = 0; i < (int)N; i++) {
            segment_view v;
            segments_view(s, slots[i], &v);
            filter_env env = { .e = e, .now_ms = now };
            assert_int_equal(filter_eval(v.filter, &env, bits), 0);
            for (person_id p = 0; p < PEOPLE; p++) {
                int want = (int)(bits[p >> 6] >> (p & 63) & 1);
                if (segments_is_member(s, slots[i], p, 0) != want)
                    fail_msg("step %d, segment \"%s\", person %u: member %d, filter says %d", step, texts[i], p, !want, want);
            }
        }
        assert_int_equal(segments_check(s, e), 0);
    }
    assert_true(flips > 50);   /* the test saw the clock do something */
    free(bits);
    seg_transitions_release(&out);
    segments_free(s);
    engine_free(e);
#undef RND
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_backfill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_in_dependency_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cycles_and_delete_guard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_with_and_without_backfill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_reaches_segments_that_name_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_and_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rebind_and_attribute_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_preview_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_far_and_back, setup, teardown),
        cmocka_unit_test(test_clock_matches_full_evaluation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
