/* Tests for src/ingest/ingest.c and apply.c: group commit from concurrent threads,
 * all-or-nothing batches, type conflicts, identity merges, erasure, injected store
 * failures (the failing request loses nothing else), and rebuild after reopening. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "ingest/ingest.h"

typedef struct fixture {
    char dir[64];
    store *st;
    ingest *ing;
} fixture;

static void open_all(fixture *f)
{
    segd_error err;
    segd_error_clear(&err);
    f->st = store_open(f->dir, &err);
    assert_non_null(f->st);
    f->ing = ingest_open(f->st, NULL, &err);
    assert_non_null(f->ing);
    assert_int_equal(ingest_wait_ready(f->ing, &err), 0);
}

static void close_all(fixture *f)
{
    ingest_close(f->ing);
    store_close(f->st);
    f->ing = NULL;
    f->st = NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/segd-test-ingest-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    open_all(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close_all(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Sends one message (JSON text) of a kind; returns the ingest result. */
static int send_msg(fixture *f, int kind, const char *json, segd_error *err)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    segd_error_clear(err);
    int rc = ingest_messages(f->ing, "default", j, kind, 0, NULL, NULL, err);
    cJSON_Delete(j);
    return rc;
}

static void ok(fixture *f, int kind, const char *json)
{
    segd_error err;
    int rc = send_msg(f, kind, json, &err);
    if (rc) fprintf(stderr, "unexpected error %s: %s\n", err.code, err.message);
    assert_int_equal(rc, 0);
}

static uint32_t events_of(fixture *f, const char *user_id, const char *event)
{
    const engine *e = ingest_read_begin(f->ing);
    person_id id = engine_person_by_user_id(e, user_id, strlen(user_id));
    int t = engine_event_type_find(e, event);
    uint32_t n = id == PERSON_NONE || t < 0 ? 0 : engine_person_event_count(e, id, t);
    assert_int_equal(engine_check(e), 0);
    ingest_read_end(f->ing);
    return n;
}

static int person_exists(fixture *f, const char *user_id)
{
    const engine *e = ingest_read_begin(f->ing);
    int found = engine_person_by_user_id(e, user_id, strlen(user_id)) != PERSON_NONE;
    ingest_read_end(f->ing);
    return found;
}

static void test_type_conflict_single_and_batch(void **state)
{
    fixture *f = *state;
    segd_error err;
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"u1\",\"traits\":{\"plan\":\"pro\"}}");
    assert_int_not_equal(send_msg(f, INGEST_IDENTIFY, "{\"userId\":\"u1\",\"traits\":{\"plan\":3}}", &err), 0);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.code, "type_conflict");
    assert_string_equal(err.field, "plan");
    assert_non_null(strstr(err.message, "string"));
    assert_non_null(strstr(err.message, "number"));

    /* a batch whose second message conflicts with its first: nothing applied */
    cJSON *b = cJSON_Parse("[{\"type\":\"identify\",\"userId\":\"u2\",\"traits\":{\"score\":1}},"
                           "{\"type\":\"identify\",\"userId\":\"u3\",\"traits\":{\"score\":\"high\"}},"
                           "{\"type\":\"track\",\"userId\":\"u2\"}]");
    cJSON *bad = NULL;
    segd_error_clear(&err);
    assert_int_not_equal(ingest_messages(f->ing, "default", b, -1, 0, NULL, &bad, &err), 0);
    assert_int_equal(err.status, 400);
    assert_int_equal(cJSON_GetArraySize(bad), 2);            /* both the conflict and the missing event */
    assert_int_equal(cJSON_GetArrayItem(bad, 0)->child->valueint, 1);
    assert_int_equal(cJSON_GetArrayItem(bad, 1)->child->valueint, 2);
    cJSON_Delete(bad);
    cJSON_Delete(b);
    assert_false(person_exists(f, "u2"));
    assert_false(person_exists(f, "u3"));
}

static void test_dedup_and_restart(void **state)
{
    fixture *f = *state;
    ok(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"buy\",\"messageId\":\"m-1\",\"properties\":{\"amount\":5}}");
    ok(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"buy\",\"messageId\":\"m-1\",\"properties\":{\"amount\":5}}");
    assert_int_equal(events_of(f, "u1", "buy"), 1);
    close_all(f);
    open_all(f);
    assert_int_equal(events_of(f, "u1", "buy"), 1);
    ok(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"buy\",\"messageId\":\"m-1\",\"properties\":{\"amount\":5}}");
    assert_int_equal(events_of(f, "u1", "buy"), 1);          /* the id survived the restart */
}

static void test_anonymous_merge_and_alias(void **state)
{
    fixture *f = *state;
    ok(f, INGEST_TRACK, "{\"anonymousId\":\"a1\",\"event\":\"view\",\"timestamp\":\"2026-01-01T00:00:00Z\"}");
    ok(f, INGEST_IDENTIFY, "{\"anonymousId\":\"a1\",\"traits\":{\"plan\":\"free\",\"color\":\"red\"}}");
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"u9\",\"traits\":{\"plan\":\"pro\"},\"timestamp\":\"2026-02-01T00:00:00Z\"}");
    ok(f, INGEST_TRACK, "{\"userId\":\"u9\",\"anonymousId\":\"a1\",\"event\":\"view\",\"timestamp\":\"2026-03-01T00:00:00Z\"}");
    assert_int_equal(events_of(f, "u9", "view"), 2);
    const engine *e = ingest_read_begin(f->ing);
    person_id u = engine_person_by_user_id(e, "u9", 2);
    assert_int_equal(engine_person_by_anonymous_id(e, "a1", 2), u);
    assert_int_equal(engine_person_count(e), 1);
    segd_cell c;
    engine_attr_get(e, u, engine_attr_find(e, "plan"), &c);
    assert_string_equal(engine_string(e, c.code, NULL), "pro");        /* the identified person's value wins */
    engine_attr_get(e, u, engine_attr_find(e, "color"), &c);
    assert_string_equal(engine_string(e, c.code, NULL), "red");        /* missing ones are copied */
    engine_attr_get(e, u, ATTR_CREATED_AT, &c);
    assert_int_equal(c.time_ms, 1767225600000LL);                      /* the oldest message */
    ingest_read_end(f->ing);

    ok(f, INGEST_TRACK, "{\"userId\":\"old-id\",\"event\":\"view\"}");
    ok(f, INGEST_ALIAS, "{\"previousId\":\"old-id\",\"userId\":\"u9\"}");
    assert_int_equal(events_of(f, "u9", "view"), 3);
    assert_false(person_exists(f, "old-id"));
    close_all(f);
    open_all(f);
    assert_int_equal(events_of(f, "u9", "view"), 3);
    assert_false(person_exists(f, "old-id"));
}

static void test_erase(void **state)
{
    fixture *f = *state;
    segd_error err;
    ok(f, INGEST_TRACK, "{\"userId\":\"gone\",\"event\":\"view\"}");
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"gone\",\"traits\":{\"email\":\"gone@example.com\"}}");
    ok(f, INGEST_TRACK, "{\"userId\":\"stays\",\"event\":\"view\"}");
    segd_error_clear(&err);
    assert_int_equal(ingest_erase(f->ing, INGEST_BY_EMAIL, "GONE@example.com", &err), 0);
    assert_false(person_exists(f, "gone"));
    assert_int_equal(ingest_erase(f->ing, INGEST_BY_USER_ID, "gone", &err), SEGD_ENOTFOUND);
    assert_int_equal(err.status, 404);
    close_all(f);
    open_all(f);
    assert_false(person_exists(f, "gone"));
    assert_int_equal(events_of(f, "stays", "view"), 1);
    const engine *e = ingest_read_begin(f->ing);
    assert_int_equal(engine_string_find(e, "gone@example.com", 16), UINT32_MAX);
    ingest_read_end(f->ing);
}

/* Creates a segment from its JSON body; returns its id in id. */
static void segment(fixture *f, const char *body, char *id)
{
    segd_error err;
    segd_error_clear(&err);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    int rc = ingest_segment_create(f->ing, j, "test", id, &err);
    cJSON_Delete(j);
    if (rc) fprintf(stderr, "segment %s: %s %s\n", body, err.code, err.message);
    assert_int_equal(rc, 0);
}

/* 1 if the person with that user id (or, without one, anonymous id) is a member. */
static int member(fixture *f, const char *segment_id, const char *user_id, const char *anonymous_id)
{
    const engine *e = ingest_read_begin(f->ing);
    person_id p = user_id ? engine_person_by_user_id(e, user_id, strlen(user_id))
                          : engine_person_by_anonymous_id(e, anonymous_id, strlen(anonymous_id));
    assert_int_not_equal(p, PERSON_NONE);
    segments *s = ingest_segments(f->ing);
    int is = segments_is_member(s, segments_find(s, segment_id), p, 0);
    assert_int_equal(segments_check(s, e), 0);
    ingest_read_end(f->ing);
    return is;
}

/* A person a write creates is checked against every segment, not only those that read
 * what the write set: a new person may match with nothing sent about them ("and()",
 * "not did(purchase)", "count(purchase) <= 3", not in a segment). */
static void test_new_person_joins_segments(void **state)
{
    fixture *f = *state;
    segd_error err;
    segd_error_clear(&err);
    cJSON *type = cJSON_Parse("{\"name\": \"purchase\"}");
    int created;
    int rc = ingest_declare_event_type(f->ing, type, &created, &err);
    cJSON_Delete(type);
    assert_int_equal(rc, 0);
    assert_int_equal(ingest_declare_attribute(f->ing, "plan", "string", &err), 0);
    char everyone[SEGMENT_ID_LEN + 1], never[SEGMENT_ID_LEN + 1], few[SEGMENT_ID_LEN + 1], pro[SEGMENT_ID_LEN + 1],
        not_pro[SEGMENT_ID_LEN + 1], body[256];
    segment(f, "{\"name\": \"everyone\", \"filter\": {\"and\": []}}", everyone);
    segment(f, "{\"name\": \"never bought\", \"filter\": {\"not\": {\"event\": \"purchase\", \"op\": \"gte\", \"value\": 1}}}", never);
    segment(f, "{\"name\": \"few\", \"filter\": {\"event\": \"purchase\", \"op\": \"lte\", \"value\": 3}}", few);
    segment(f, "{\"name\": \"pro\", \"filter\": {\"attribute\": \"plan\", \"op\": \"eq\", \"value\": \"pro\"}}", pro);
    snprintf(body, sizeof body, "{\"name\": \"not pro\", \"filter\": {\"segment\": \"%s\", \"op\": \"not_in\"}}", pro);
    segment(f, body, not_pro);

    ok(f, INGEST_IDENTIFY, "{\"userId\":\"u1\",\"traits\":{\"plan\":\"pro\"}}");
    ok(f, INGEST_PAGE, "{\"anonymousId\":\"a1\",\"name\":\"Home\"}");
    ok(f, INGEST_TRACK, "{\"userId\":\"u2\",\"event\":\"purchase\"}");
    ok(f, INGEST_ALIAS, "{\"previousId\":\"nobody\",\"userId\":\"u3\"}");
    assert_true(member(f, everyone, "u1", NULL));
    assert_true(member(f, never, "u1", NULL));
    assert_true(member(f, few, "u1", NULL));
    assert_false(member(f, not_pro, "u1", NULL));
    assert_true(member(f, everyone, NULL, "a1"));
    assert_true(member(f, never, NULL, "a1"));
    assert_true(member(f, not_pro, NULL, "a1"));
    assert_true(member(f, everyone, "u2", NULL));
    assert_false(member(f, never, "u2", NULL));
    assert_true(member(f, few, "u2", NULL));
    assert_true(member(f, not_pro, "u2", NULL));
    assert_true(member(f, everyone, "u3", NULL));
    assert_true(member(f, not_pro, "u3", NULL));
}

/* The person's created_at in the engine, or INT64_MIN when missing. */
static int64_t created_at_of(fixture *f, const char *user_id)
{
    const engine *e = ingest_read_begin(f->ing);
    person_id p = engine_person_by_user_id(e, user_id, strlen(user_id));
    segd_cell c;
    int64_t t = p != PERSON_NONE && engine_attr_get(e, p, ATTR_CREATED_AT, &c) ? c.time_ms : INT64_MIN;
    ingest_read_end(f->ing);
    return t;
}

/* "createdAt": null unpins created_at: it is again the oldest time known of the person
 * (their oldest event, then lowered by messages), the same as a rebuild from the store
 * computes, so a restart keeps it (and every segment reading it). */
static void test_created_at_cleared_survives_restart(void **state)
{
    fixture *f = *state;
    ok(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"view\",\"timestamp\":\"2026-01-01T00:00:00Z\"}");
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"u1\",\"traits\":{\"createdAt\":null},\"timestamp\":\"2026-03-01T00:00:00Z\"}");
    int64_t before = created_at_of(f, "u1");
    assert_int_equal(before, 1767225600000LL);      /* the event of 2026-01-01 */
    close_all(f);
    open_all(f);
    assert_int_equal(created_at_of(f, "u1"), before);
}

/* Numbers are stored exactly: cJSON alone prints its 15-digit form when that reads back
 * within a tolerance, which stored 0.30000000000000004 as 0.3 and 9007199254740992 as
 * 9007199254740990 (after a restart "score in (0.30000000000000004)" lost its members). */
static void test_numbers_survive_restart(void **state)
{
    fixture *f = *state;
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"u1\",\"traits\":{\"score\":0.30000000000000004,\"big\":9007199254740992}}");
    ok(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"buy\",\"properties\":{\"amount\":0.30000000000000004}}");
    for (int pass = 0; pass < 2; pass++) {
        const engine *e = ingest_read_begin(f->ing);
        person_id p = engine_person_by_user_id(e, "u1", 2);
        segd_cell c;
        assert_true(engine_attr_get(e, p, engine_attr_find(e, "score"), &c));
        double score = c.number;
        assert_true(engine_attr_get(e, p, engine_attr_find(e, "big"), &c));
        double big = c.number;
        int buy = engine_event_type_find(e, "buy");
        assert_true(engine_event_prop_get(e, buy, 0, engine_prop_find(e, buy, "amount"), &c));
        double amount = c.number;
        ingest_read_end(f->ing);
        assert_true(score == 0.30000000000000004);
        assert_true(big == 9007199254740992.0);
        assert_true(amount == 0.30000000000000004);
        close_all(f);
        open_all(f);
    }
}

typedef struct writer_arg {
    fixture *f;
    int thread;
    int failures;
} writer_arg;

static void *concurrent_writer(void *p)
{
    writer_arg *a = p;
    char json[256];
    for (int i = 0; i < 50; i++) {
        segd_error err;
        snprintf(json, sizeof json, "{\"userId\":\"t%d\",\"event\":\"tick\",\"messageId\":\"t%d-%d\"}", a->thread, a->thread, i);
        if (send_msg(a->f, INGEST_TRACK, json, &err) != 0) a->failures++;
    }
    return NULL;
}

static void test_group_commit_concurrent(void **state)
{
    fixture *f = *state;
    pthread_t th[8];
    writer_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (writer_arg){f, i, 0};
        pthread_create(&th[i], NULL, concurrent_writer, &args[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) assert_int_equal(args[i].failures, 0);
    ingest_stats st;
    ingest_get_stats(f->ing, &st);
    assert_int_equal(st.ops_committed, 400);
    assert_true(st.groups_committed <= 400);
    close_all(f);
    open_all(f);
    char uid[32];
    for (int i = 0; i < 8; i++) {
        snprintf(uid, sizeof uid, "t%d", i);
        assert_int_equal(events_of(f, uid, "tick"), 50);
    }
}

/* Prepares a batch (JSON array text) without submitting it. */
static ingest_batch *prepare_batch(fixture *f, const char *json, cJSON **tree)
{
    segd_error err;
    segd_error_clear(&err);
    *tree = cJSON_Parse(json);
    assert_non_null(*tree);
    ingest_batch *b = ingest_prepare(f->ing, "default", *tree, -1, 0, NULL, &err);
    assert_non_null(b);
    return b;
}

/* ingest_prepare checks a batch of known events against the catalog ahead; the
 * writer trusts that only while the catalog is unchanged. A batch prepared before a
 * store failure (whose rebuild replaces the engine and its catalog), or before a new
 * property was declared, is checked again and applied as any other; one with a new
 * type or a conflict is left to the writer, which names the error. */
static void test_batches_checked_ahead(void **state)
{
    fixture *f = *state;
    segd_error err;
    cJSON *t1, *t2, *t3, *t4;
    ok(f, INGEST_TRACK, "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"p\":1,\"s\":\"a\"}}");
    ingest_batch *b1 = prepare_batch(f, "[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"p\":2,\"s\":\"b\"}}]", &t1);
    ingest_batch *b2 = prepare_batch(f, "[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"p\":3}}]", &t2);
    ingest_batch *b3 = prepare_batch(f, "[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"p\":\"x\"}}]", &t3);
    ingest_batch *b4 = prepare_batch(f, "[{\"type\":\"track\",\"userId\":\"u\",\"event\":\"new\",\"properties\":{\"q\":1}}]", &t4);

    /* a store failure: the engine is rebuilt, the catalog version moves on */
    ingest_fail_nth_write(f->ing, 1);
    assert_int_not_equal(send_msg(f, INGEST_TRACK, "{\"userId\":\"v\",\"event\":\"gone\",\"properties\":{\"g\":1}}", &err), 0);
    assert_int_equal(ingest_submit(f->ing, b1, NULL, NULL, &err), 0);
    /* a new property of e since b2 was prepared */
    ok(f, INGEST_TRACK, "{\"userId\":\"u\",\"event\":\"e\",\"properties\":{\"r\":true}}");
    assert_int_equal(ingest_submit(f->ing, b2, NULL, NULL, &err), 0);
    /* a conflict, and a new type: the writer decides */
    cJSON *bad = NULL;
    assert_int_not_equal(ingest_submit(f->ing, b3, NULL, &bad, &err), 0);
    assert_int_equal(err.status, 400);
    assert_non_null(bad);
    cJSON_Delete(bad);
    assert_int_equal(ingest_submit(f->ing, b4, NULL, NULL, &err), 0);
    cJSON_Delete(t1);
    cJSON_Delete(t2);
    cJSON_Delete(t3);
    cJSON_Delete(t4);

    assert_int_equal(events_of(f, "u", "e"), 4);
    assert_int_equal(events_of(f, "u", "new"), 1);
    assert_false(person_exists(f, "v"));
    close_all(f);                        /* what the store kept is what the engine had */
    open_all(f);
    assert_int_equal(events_of(f, "u", "e"), 4);
    assert_int_equal(events_of(f, "u", "new"), 1);
}

static void test_store_failure_loses_nothing_else(void **state)
{
    fixture *f = *state;
    segd_error err;
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"before\",\"traits\":{\"plan\":\"pro\"}}");
    for (int nth = 1; nth <= 4; nth++) {
        ingest_fail_nth_write(f->ing, nth);
        char json[128];
        snprintf(json, sizeof json, "{\"userId\":\"victim%d\",\"event\":\"x\",\"messageId\":\"v%d\",\"properties\":{\"p\":1}}",
                 nth, nth);
        int rc = send_msg(f, INGEST_TRACK, json, &err);
        if (rc != 0) {
            assert_int_equal(err.status, 503);
            char uid[32];
            snprintf(uid, sizeof uid, "victim%d", nth);
            assert_false(person_exists(f, uid));
            /* the message id was not remembered: a retry is applied */
            ok(f, INGEST_TRACK, json);
            assert_int_equal(events_of(f, uid, "x"), 1);
        }
    }
    ingest_stats st;
    ingest_get_stats(f->ing, &st);
    assert_true(st.rebuilds >= 1);
    assert_true(person_exists(f, "before"));
    close_all(f);
    open_all(f);
    assert_true(person_exists(f, "before"));
    assert_int_equal(store_integrity_check(f->st), 0);
}

typedef struct acked_arg {
    fixture *f;
    int thread;
    int acked;          /* events acknowledged */
} acked_arg;

static void *acked_writer(void *p)
{
    acked_arg *a = p;
    char json[256];
    for (int i = 0; i < 40; i++) {
        segd_error err;
        /* every thread writes to the same new people in turn, so an op that fails after
         * creating a person is often followed, in the same group, by another thread's op
         * for that person */
        snprintf(json, sizeof json, "{\"userId\":\"w%d\",\"event\":\"tick\",\"messageId\":\"w%d-%d\"}", i / 4,
                 a->thread, i);
        if (send_msg(a->f, INGEST_TRACK, json, &err) == 0) a->acked++;
        else assert_int_equal(err.status, 503);
    }
    return NULL;
}

/* Store failures while several writers share groups: every acknowledged write is in
 * the engine and, after a restart, in the store; nothing unacknowledged is. */
static void test_store_failures_under_concurrency(void **state)
{
    fixture *f = *state;
    pthread_t th[6];
    acked_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (acked_arg){f, i, 0};
        pthread_create(&th[i], NULL, acked_writer, &args[i]);
    }
    for (int k = 0; k < 20; k++) {
        ingest_fail_nth_write(f->ing, 3 + k % 5);
        usleep(2000);
    }
    for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
    ingest_fail_nth_write(f->ing, 0);
    uint32_t acked = 0;
    for (int t = 0; t < 6; t++) acked += (uint32_t)args[t].acked;
    assert_true(ingest_ready(f->ing));
    for (int pass = 0; pass < 2; pass++) {
        uint32_t total = 0;
        char uid[32];
        for (int p = 0; p < 10; p++) {
            snprintf(uid, sizeof uid, "w%d", p);
            total += events_of(f, uid, "tick");
        }
        assert_int_equal(total, acked);
        close_all(f);
        open_all(f);
    }
    assert_int_equal(store_integrity_check(f->st), 0);
}

static void test_declare_and_drop_attribute(void **state)
{
    fixture *f = *state;
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(ingest_declare_attribute(f->ing, "code", "string", &err), 0);
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"u1\",\"traits\":{\"code\":\"2026-01-01T00:00:00Z\"}}");
    assert_int_equal(ingest_declare_attribute(f->ing, "code", "number", &err), SEGD_ECONFLICT);
    assert_int_equal(err.status, 409);
    assert_int_equal(ingest_drop_attribute(f->ing, "email", &err), SEGD_EINVAL);
    assert_int_equal(ingest_drop_attribute(f->ing, "nope", &err), SEGD_ENOTFOUND);
    assert_int_equal(ingest_drop_attribute(f->ing, "code", &err), 0);
    ok(f, INGEST_IDENTIFY, "{\"userId\":\"u1\",\"traits\":{\"code\":7}}");
    close_all(f);
    open_all(f);
    const engine *e = ingest_read_begin(f->ing);
    int a = engine_attr_find(e, "code");
    assert_true(a >= 0);
    assert_int_equal(engine_attr_type(e, a), SEGD_T_NUMBER);
    ingest_read_end(f->ing);
}

/* ---- segments on the write path ---- */

static int is_member(fixture *f, const char *seg_id, const char *user_id)
{
    const engine *e = ingest_read_begin(f->ing);
    segments *s = ingest_segments(f->ing);
    person_id p = engine_person_by_user_id(e, user_id, strlen(user_id));
    int slot = segments_find(s, seg_id);
    int in = p != PERSON_NONE && slot >= 0 && segments_is_member(s, slot, p, 0);
    assert_int_equal(segments_check(s, e), 0);
    ingest_read_end(f->ing);
    return in;
}

static int count_cb(void *ctx, const store_transition *t)
{
    (void)t;
    (*(int *)ctx)++;
    return 0;
}

static int transitions(fixture *f)
{
    int n = 0;
    assert_true(store_read_outbox(f->st, 0, 100000, count_cb, &n) >= 0);
    return n;
}

static void create_segment(fixture *f, const char *name, const char *filter, char *id)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "name", name);
    cJSON_AddStringToObject(b, "filter", filter);
    segd_error err;
    segd_error_clear(&err);
    int rc = ingest_segment_create(f->ing, b, "test", id, &err);
    if (rc) fprintf(stderr, "create: %s %s\n", err.code, err.message);
    assert_int_equal(rc, 0);
    cJSON_Delete(b);
}

/* A store failure during the write that flips a membership keeps neither the write
 * nor the flip; the retry makes exactly one transition. Restarts (with the checkpoint
 * and the transitions after it, or with only schema 4's member rows) change nothing. */
static void test_segments_follow_writes_and_failures(void **state)
{
    fixture *f = *state;
    char id[SEGMENT_ID_LEN + 1];
    ok(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"purchase\",\"properties\":{\"amount\":10}}");
    ok(f, INGEST_TRACK, "{\"userId\":\"u2\",\"event\":\"purchase\",\"properties\":{\"amount\":900}}");
    create_segment(f, "Buyers of 2", "count(purchase) >= 2", id);
    assert_false(is_member(f, id, "u1"));
    assert_int_equal(transitions(f), 0);
    for (int nth = 1; nth <= 3; nth++) {     /* the event, the transition, the member row */
        ingest_fail_nth_write(f->ing, nth);
        segd_error err;
        assert_int_not_equal(send_msg(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"purchase\",\"properties\":{\"amount\":1}}", &err), 0);
        assert_false(is_member(f, id, "u1"));
        assert_int_equal(events_of(f, "u1", "purchase"), 1);
        assert_int_equal(transitions(f), 0);
    }
    ingest_fail_nth_write(f->ing, 0);
    ok(f, INGEST_TRACK, "{\"userId\":\"u1\",\"event\":\"purchase\",\"properties\":{\"amount\":1}}");
    assert_true(is_member(f, id, "u1"));
    assert_int_equal(transitions(f), 1);
    ok(f, INGEST_TRACK, "{\"userId\":\"u2\",\"event\":\"purchase\",\"properties\":{\"amount\":1}}");
    assert_int_equal(transitions(f), 2);

    /* restart: checkpoint (at creation) + the two transitions after it */
    close_all(f);
    open_all(f);
    assert_true(is_member(f, id, "u1"));
    assert_true(is_member(f, id, "u2"));
    assert_int_equal(transitions(f), 2);

    /* a schema-4 store: no checkpoint, the member rows hold the members (u2 joined at
     * creation without one in schema 5, so give it its row as schema 4 wrote them) */
    close_all(f);
    char path[128];
    snprintf(path, sizeof path, "%s/segd.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE segments SET members = NULL, members_seq = -1;"
                                      "INSERT OR REPLACE INTO segment_members SELECT num, 1, 0, 4 FROM segments",
                                  NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    open_all(f);
    assert_true(is_member(f, id, "u1"));
    assert_true(is_member(f, id, "u2"));
    assert_int_equal(transitions(f), 2);
    close_all(f);
    open_all(f);                        /* the checkpoint written at that start is used now */
    assert_true(is_member(f, id, "u1"));
    assert_int_equal(transitions(f), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_type_conflict_single_and_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anonymous_merge_and_alias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_person_joins_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_at_cleared_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_survive_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failure_loses_nothing_else, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches_checked_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_declare_and_drop_attribute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failures_under_concurrency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_follow_writes_and_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
