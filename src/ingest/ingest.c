/* ingest.c - the ingest object: start (rebuild), the writer thread with group commit,
 * and the public write calls that queue ops to it and wait.
 *
 * Group commit: requests arrive on many HTTP threads; each normalises its messages,
 * queues one op and sleeps. The writer takes every queued op (up to max_group_ops),
 * runs each under its own savepoint inside one transaction, commits once (one fsync
 * for all of them) and wakes them. A request is answered only after that commit.
 */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/base32.h"
#include "../base/timefmt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ingest_config_defaults(ingest_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->limits.max_attributes = 1000;
    cfg->limits.max_event_types = 1000;
    cfg->limits.max_properties = 100;
    cfg->max_message_bytes = 32 * 1024;
    cfg->dedup_window_ms = 30LL * 86400 * 1000;
    cfg->max_group_ops = 256;
}

typedef struct key_list {
    dedup_key *v;
    size_t n, cap;
} key_list;

/* Hashes each stored message id as it is read; they are inserted on another thread
 * while the engine is rebuilt (see load). */
static int load_message(void *ctx, const char *source, const char *id, int64_t at_ms)
{
    key_list *keys = ctx;
    keys->v = xgrow(keys->v, sizeof *keys->v, &keys->cap, keys->n + 1, 4096);
    dedup_key_of(source, id, at_ms, &keys->v[keys->n++]);
    return 0;
}

typedef struct dedup_fill {
    dedup_set *set;
    key_list keys;
} dedup_fill;

static void *fill_dedup(void *arg)
{
    dedup_fill *f = arg;
    dedup_add_keys(f->set, f->keys.v, f->keys.n);
    return NULL;
}

static void op_finish_failed_group(ingest *ing, ingest_op *op)
{
    for (size_t i = 0; i < op->n_added; i++) dedup_remove(ing->dedup, op->source, op->added_ids[i]);
    op->n_added = 0;
}

/* Runs one group of ops in one transaction. */
/* Runs one group of ops in one transaction. If the store fails inside an op, the ops
 * after it are not run: they would be applied to an engine that is ahead of the store.
 * They are cut off the list and returned, to be run again after the rebuild; the ops
 * before the failure commit as usual. Returns NULL when every op ran. */
static ingest_op *run_group(ingest *ing, ingest_op *ops)
{
    int dirty = 0;
    size_t expect = __atomic_exchange_n(&ing->dedup_expect, 0, __ATOMIC_ACQ_REL);
    if (expect) dedup_reserve(ing->dedup, expect);
    ingest_op *not_run = NULL;
    int began = store_begin(ing->st) == 0;
    for (ingest_op *op = ops; op; op = op->next) {
        if (!began) {
            op->result = segd_error_set(&op->err, 503, "store_unavailable",
                                        "the store could not start a transaction; retry later");
            continue;
        }
        pthread_rwlock_wrlock(&ing->lock);
        if (ing->fail_nth_write) {
            store_fail_nth_write(ing->st, ing->fail_nth_write);
            ing->fail_nth_write = 0;
        }
        int rc = store_savepoint(ing->st);
        if (rc == 0) rc = ingest_apply_op(ing, op);
        if (rc == 0) rc = store_release(ing->st);
        if (rc != 0) {
            store_rollback_to(ing->st);
            op_finish_failed_group(ing, op);
            if (op->err.status == 0) {
                dirty = 1;     /* the store failed mid-op: the engine may be ahead of it */
                segd_error_set(&op->err, 503, "store_failed",
                               "the change could not be stored (disk full or I/O error); nothing of it was kept, retry later");
            }
            op->result = rc < 0 ? rc : SEGD_EIO;
        }
        pthread_rwlock_unlock(&ing->lock);
        if (dirty) {
            not_run = op->next;
            op->next = NULL;
            break;
        }
    }
    if (began && store_commit(ing->st) != 0) {
        store_rollback(ing->st);
        dirty = 1;
        for (ingest_op *op = ops; op; op = op->next) {
            if (op->result != 0) continue;
            op_finish_failed_group(ing, op);
            op->result = segd_error_set(&op->err, 503, "store_failed",
                                        "the change could not be committed (disk full or I/O error); nothing of it was kept, retry later");
        }
    }
    if (dirty) {
        segd_error err;
        segd_error_clear(&err);
        pthread_rwlock_wrlock(&ing->lock);
        engine *fresh = ingest_rebuild_engine(ing, &err);
        if (fresh) {
            pthread_mutex_lock(&ing->catalog_lock);
            engine_free(ing->eng);
            ing->eng = fresh;
            ing->catalog_version++;
            pthread_mutex_unlock(&ing->catalog_lock);
            /* the segments read the old engine: back to what the store holds */
            if (ingest_segments_load(ing, &err) != 0)
                fprintf(stderr, "segd: restoring the segments after a store failure failed: %s\n", err.message);
        } else {
            fprintf(stderr, "segd: rebuilding the engine after a store failure failed: %s; not ready\n", err.message);
            ing->ready = 0;
            ing->load_failed = 1;          /* later writes fail fast with 503 */
            ing->load_error = err;
        }
        pthread_rwlock_unlock(&ing->lock);
    }
    pthread_mutex_lock(&ing->stats_lock);
    ing->stats.dedup_ids = dedup_count(ing->dedup);
    ing->stats.dedup_bytes = dedup_bytes(ing->dedup);
    ing->stats.groups_committed += began;
    ing->stats.rebuilds += dirty;
    for (ingest_op *op = ops; op; op = op->next) {
        if (op->result == 0) {
            ing->stats.ops_committed++;
            ing->stats.messages_applied += (uint64_t)op->applied;
            ing->stats.events_appended += (uint64_t)op->applied_events;
            ing->stats.messages_deduplicated += (uint64_t)op->deduplicated;
        } else {
            ing->stats.ops_failed++;
        }
    }
    pthread_mutex_unlock(&ing->stats_lock);
    return not_run;
}

/* The writer's first job: the engine and the dedup set from the store. */
static void load(ingest *ing)
{
    segd_error err;
    segd_error_clear(&err);
    pthread_rwlock_wrlock(&ing->lock);
    /* the message ids are read first (quick), then put into the dedup set on a second
     * thread while this one rebuilds the engine: the two take about as long */
    dedup_fill fill = {ing->dedup, {0}};
    pthread_t filler;
    int filling = 0;
    engine *eng = NULL;
    if (store_load_messages(ing->st, timefmt_now_ms() - ing->cfg.dedup_window_ms, load_message, &fill.keys) != 0) {
        segd_error_set(&err, 500, "store_unreadable", "the store's message ids could not be read; see the log");
    } else {
        filling = pthread_create(&filler, NULL, fill_dedup, &fill) == 0;
        if (!filling) fill_dedup(&fill);
        eng = ingest_rebuild_engine(ing, &err);
    }
    if (filling) pthread_join(filler, NULL);
    free(fill.keys.v);
    if (eng) {
        engine_compact(eng);        /* the rebuild grew every array by steps: fit them */
        pthread_mutex_lock(&ing->catalog_lock);
        engine_free(ing->eng);
        ing->eng = eng;
        ing->catalog_version++;
        pthread_mutex_unlock(&ing->catalog_lock);
        if (ingest_segments_load(ing, &err) != 0) eng = NULL;    /* not ready: err says why */
    }
    pthread_rwlock_unlock(&ing->lock);
    pthread_mutex_lock(&ing->stats_lock);
    ing->stats.dedup_ids = dedup_count(ing->dedup);
    ing->stats.dedup_bytes = dedup_bytes(ing->dedup);
    pthread_mutex_unlock(&ing->stats_lock);
    pthread_mutex_lock(&ing->queue_lock);
    if (eng) {
        __atomic_store_n(&ing->ready, 1, __ATOMIC_RELEASE);
    } else {
        ing->load_failed = 1;
        ing->load_error = err;
    }
    pthread_cond_broadcast(&ing->ready_cond);
    pthread_mutex_unlock(&ing->queue_lock);
}

/* When the writer must next run a tick by the real clock (INT64_MAX: no need). With
 * the test clock set, ticks run only when it is moved. */
static int64_t next_tick(ingest *ing, int64_t failed_until)
{
    if (!ing->ready || ing->load_failed || ing->cfg.test_clock) return INT64_MAX;
    int64_t due = ingest_segments_next_due(ing);
    return due < failed_until ? failed_until : due;
}

/* Runs the clock's op: due re-checks, history points, cached-results refreshes. */
static int run_tick(ingest *ing)
{
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = INGEST_TICK;
    ingest_op op;
    ingest_op_init(&op, "default", &m, 1, 0);
    ingest_op *again = run_group(ing, &op);
    (void)again;
    return op.result;
}

static void *writer_main(void *arg)
{
    ingest *ing = arg;
    int64_t last_prune = timefmt_now_ms(), tick_failed_until = 0;
    load(ing);
    for (;;) {
        pthread_mutex_lock(&ing->queue_lock);
        int tick = 0;
        while (!ing->queue_head && !ing->stopping) {
            int64_t due = next_tick(ing, tick_failed_until);
            if (due == INT64_MAX) {
                pthread_cond_wait(&ing->queue_cond, &ing->queue_lock);
                continue;
            }
            if (due <= timefmt_now_ms()) {
                tick = 1;
                break;
            }
            struct timespec ts = { .tv_sec = due / 1000, .tv_nsec = (long)(due % 1000) * 1000000L };
            pthread_cond_timedwait(&ing->queue_cond, &ing->queue_lock, &ts);
        }
        if (tick) {
            pthread_mutex_unlock(&ing->queue_lock);
            if (run_tick(ing) != 0) tick_failed_until = timefmt_now_ms() + 1000;   /* retry in a second */
            continue;
        }
        if (!ing->queue_head) {
            pthread_mutex_unlock(&ing->queue_lock);
            break;
        }
        ingest_op *group = ing->queue_head, *last = group;
        for (int n = 1; last->next && n < ing->cfg.max_group_ops; n++) last = last->next;
        ing->queue_head = last->next;
        if (!ing->queue_head) ing->queue_tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&ing->queue_lock);

        ingest_op *again = NULL;
        if (ing->load_failed) {
            for (ingest_op *op = group; op; op = op->next)
                op->result = segd_error_set(&op->err, 503, "not_ready", "segd could not load its store; see the log");
        } else {
            again = run_group(ing, group);
        }

        pthread_mutex_lock(&ing->queue_lock);
        for (ingest_op *op = group, *next; op; op = next) {
            next = op->next;
            op->done = 1;
        }
        if (again) {                       /* first in line again, in their order */
            ingest_op *tail = again;
            while (tail->next) tail = tail->next;
            tail->next = ing->queue_head;
            ing->queue_head = again;
            if (!ing->queue_tail) ing->queue_tail = tail;
        }
        pthread_cond_broadcast(&ing->done_cond);
        pthread_mutex_unlock(&ing->queue_lock);

        int64_t now = timefmt_now_ms();
        if (now - last_prune > 3600 * 1000) {       /* hourly: forget ids past the window */
            last_prune = now;
            dedup_prune(ing->dedup, now - ing->cfg.dedup_window_ms);
            if (store_begin(ing->st) == 0) {
                if (store_prune_messages(ing->st, now - ing->cfg.dedup_window_ms) == 0) store_commit(ing->st);
                else store_rollback(ing->st);
            }
        }
    }
    return NULL;
}

ingest *ingest_open(store *st, const ingest_config *cfg, segd_error *err)
{
    ingest *ing = xcalloc(1, sizeof *ing);
    if (cfg) ing->cfg = *cfg;
    else ingest_config_defaults(&ing->cfg);
    ing->st = st;
    ing->segs = segments_new();
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* writers first: a stream of readers must not starve ingestion */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ing->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&ing->queue_lock, NULL);
    pthread_mutex_init(&ing->stats_lock, NULL);
    pthread_mutex_init(&ing->catalog_lock, NULL);
    pthread_cond_init(&ing->queue_cond, NULL);
    pthread_cond_init(&ing->done_cond, NULL);
    pthread_cond_init(&ing->ready_cond, NULL);
    segd_error_clear(&ing->load_error);
    ing->dedup = dedup_new();
    if (pthread_create(&ing->writer, NULL, writer_main, ing) != 0) {
        segd_error_set(err, 500, "thread_failed", "could not start the writer thread");
        ingest_close(ing);
        return NULL;
    }
    ing->writer_started = 1;
    return ing;
}

int ingest_wait_ready(ingest *ing, segd_error *err)
{
    pthread_mutex_lock(&ing->queue_lock);
    while (!ing->ready && !ing->load_failed) pthread_cond_wait(&ing->ready_cond, &ing->queue_lock);
    int rc = 0;
    if (ing->load_failed) {
        *err = ing->load_error;
        rc = segd_status_rc(err->status);
    }
    pthread_mutex_unlock(&ing->queue_lock);
    return rc;
}

void ingest_close(ingest *ing)
{
    if (!ing) return;
    if (ing->writer_started) {
        pthread_mutex_lock(&ing->queue_lock);
        ing->stopping = 1;
        pthread_cond_broadcast(&ing->queue_cond);
        pthread_mutex_unlock(&ing->queue_lock);
        pthread_join(ing->writer, NULL);
    }
    segments_free(ing->segs);
    free(ing->seg_slot);
    free(ing->chg.attrs);
    free(ing->chg.types);
    free(ing->chg.departed);
    free(ing->chg.people);
    free(ing->chg.created);
    engine_free(ing->eng);
    dedup_free(ing->dedup);
    free(ing->created_pinned);
    pthread_rwlock_destroy(&ing->lock);
    pthread_mutex_destroy(&ing->queue_lock);
    pthread_mutex_destroy(&ing->catalog_lock);
    pthread_mutex_destroy(&ing->stats_lock);
    pthread_cond_destroy(&ing->queue_cond);
    pthread_cond_destroy(&ing->done_cond);
    pthread_cond_destroy(&ing->ready_cond);
    free(ing);
}

int ingest_ready(const ingest *ing)
{
    return ing && __atomic_load_n(&ing->ready, __ATOMIC_ACQUIRE);
}

const engine *ingest_read_begin(ingest *ing)
{
    /* while loading, the writer holds the lock for the whole rebuild: answer at once */
    if (!__atomic_load_n(&ing->ready, __ATOMIC_ACQUIRE)) return NULL;
    pthread_rwlock_rdlock(&ing->lock);
    if (!ing->ready || !ing->eng) {
        pthread_rwlock_unlock(&ing->lock);
        return NULL;
    }
    return ing->eng;
}

void ingest_read_end(ingest *ing)
{
    pthread_rwlock_unlock(&ing->lock);
}

void ingest_get_stats(ingest *ing, ingest_stats *out)
{
    pthread_mutex_lock(&ing->stats_lock);
    *out = ing->stats;
    pthread_mutex_unlock(&ing->stats_lock);
}

void ingest_fail_nth_write(ingest *ing, int n)
{
    pthread_rwlock_wrlock(&ing->lock);
    ing->fail_nth_write = n;
    pthread_rwlock_unlock(&ing->lock);
}

/* Appends an op to the writer's queue; the caller holds queue_lock. */
static void enqueue(ingest *ing, ingest_op *op)
{
    op->next = NULL;
    if (ing->queue_tail) ing->queue_tail->next = op;
    else ing->queue_head = op;
    ing->queue_tail = op;
    pthread_cond_signal(&ing->queue_cond);
}

int ingest_submit_op(ingest *ing, ingest_op *op, segd_error *err)
{
    pthread_mutex_lock(&ing->queue_lock);
    if (ing->stopping || ing->load_failed) {
        pthread_mutex_unlock(&ing->queue_lock);
        return segd_error_set(err, 503, "not_ready", ing->stopping ? "segd is shutting down; retry in a moment"
                                                                    : "segd could not load its store; see the log");
    }
    enqueue(ing, op);
    while (!op->done) pthread_cond_wait(&ing->done_cond, &ing->queue_lock);
    pthread_mutex_unlock(&ing->queue_lock);
    if (op->result != 0) *err = op->err;
    return op->result;
}

void ingest_op_init(ingest_op *op, const char *source, ingest_msg *msgs, size_t n, int is_batch)
{
    memset(op, 0, sizeof *op);
    op->source = source ? source : "default";
    op->msgs = msgs;
    op->n_msgs = n;
    op->is_batch = is_batch;
    segd_error_clear(&op->err);
}

static int cmp_error_index(const void *a, const void *b)
{
    int x = cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)a, "index")->valueint;
    int y = cJSON_GetObjectItemCaseSensitive(*(cJSON *const *)b, "index")->valueint;
    return (x > y) - (x < y);
}

/* Orders a batch's error list by message index. */
static void sort_errors(cJSON *errors)
{
    int n = cJSON_GetArraySize(errors);
    cJSON **v = xmalloc((size_t)(n ? n : 1) * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = cJSON_DetachItemFromArray(errors, 0);
    qsort(v, (size_t)n, sizeof *v, cmp_error_index);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(errors, v[i]);
    free(v);
}

struct ingest_batch {
    const char *source;
    ingest_msg *msgs;
    size_t n;
    int is_batch;
    char *props;                  /* the events' printed properties, back to back */
    size_t props_cap;
    int *prop_index;              /* the messages' prop_index and prop_values arrays */
    segd_value *prop_values;
    uint64_t checked_version;     /* see ingest_op */
};

void ingest_expect_messages(ingest *ing, size_t n)
{
    __atomic_store_n(&ing->dedup_expect, n, __ATOMIC_RELEASE);
}

void ingest_batch_free(ingest_batch *b)
{
    if (!b) return;
    for (size_t k = 0; k < b->n; k++) ingest_msg_release(&b->msgs[k]);
    free(b->msgs);
    free(b->props);
    free(b->prop_index);
    free(b->prop_values);
    free(b);
}

/* Completes err and *errors for a batch with invalid messages: checks the well-formed
 * ones against the catalog too, so every bad message is named, and makes the
 * top-level error name the first. */
static void explain_bad_batch(ingest *ing, const char *source, ingest_msg *m, size_t n, cJSON *errors,
                              segd_error *err)
{
    ingest_msg *ok = xcalloc(n ? n : 1, sizeof *ok);
    size_t n_ok = 0;
    for (size_t k = 0; k < n; k++) {
        int bad_k = 0;
        for (cJSON *x = errors->child; x && !bad_k; x = x->next)
            bad_k = cJSON_GetObjectItemCaseSensitive(x, "index")->valueint == (int)k;
        if (!bad_k) ok[n_ok++] = m[k];      /* a shallow copy: m still owns and releases it */
    }
    if (n_ok) {
        ingest_op op;
        ingest_op_init(&op, source, ok, n_ok, 1);
        op.validate_only = 1;
        segd_error ignored;
        segd_error_clear(&ignored);
        ingest_submit_op(ing, &op, &ignored);
        if (op.bad) {
            cJSON *x;
            while ((x = cJSON_DetachItemFromArray(op.bad, 0))) cJSON_AddItemToArray(errors, x);
            cJSON_Delete(op.bad);
            sort_errors(errors);
        }
    }
    free(ok);
    cJSON *first_bad = errors->child;
    segd_error_clear(err);
    err->index = cJSON_GetObjectItemCaseSensitive(first_bad, "index")->valueint;
    snprintf(err->field, sizeof err->field, "%s", cJSON_GetObjectItemCaseSensitive(first_bad, "field")->valuestring);
    char first[sizeof err->message];
    snprintf(first, sizeof first, "%s", cJSON_GetObjectItemCaseSensitive(first_bad, "message")->valuestring);
    err->status = 400;
    snprintf(err->code, sizeof err->code, "invalid_batch");
    snprintf(err->message, sizeof err->message,
             "%d message(s) of the batch are invalid (see \"errors\"; the first: %.300s); fix them and send the batch again: nothing of it was applied",
             cJSON_GetArraySize(errors), first);
}

/* Checks a batch of events against the catalog ahead, as the writer would (known
 * event type, known properties, values of their types, not too many), under
 * catalog_lock only, so that the writer can skip the check and the name lookups: it
 * was 10-20% of the writer's time, most of it in first touches of the names. A batch
 * with anything else (another kind of message, a new type or property, a conflict)
 * is left to the writer, which also names the errors. */
static void check_ahead(ingest *ing, ingest_batch *b)
{
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        int k = b->msgs[i].kind;
        if (k != INGEST_TRACK && k != INGEST_PAGE && k != INGEST_SCREEN) return;
        if (b->msgs[i].props.n > ing->cfg.limits.max_properties) return;
        total += b->msgs[i].props.n;
    }
    b->prop_index = xmalloc((total ? total : 1) * sizeof *b->prop_index);
    b->prop_values = xmalloc((total ? total : 1) * sizeof *b->prop_values);
    int ok = 1;
    pthread_mutex_lock(&ing->catalog_lock);
    const engine *e = __atomic_load_n(&ing->ready, __ATOMIC_ACQUIRE) ? ing->eng : NULL;
    uint64_t version = ing->catalog_version;
    size_t used = 0;
    for (size_t i = 0; i < b->n && ok && e; i++) {
        ingest_msg *m = &b->msgs[i];
        m->event_type = engine_event_type_find(e, m->event);
        m->prop_index = b->prop_index + used;
        m->prop_values = b->prop_values + used;
        used += m->props.n;
        ok = m->event_type >= 0;
        for (size_t k = 0; k < m->props.n && ok; k++) {
            int p = engine_prop_find(e, m->event_type, m->props.v[k].name);
            ok = p >= 0 && ingest_resolve_value(&m->props.v[k], engine_prop_type(e, m->event_type, p),
                                                &m->prop_values[k]) == 0;
            m->prop_index[k] = p;
        }
    }
    pthread_mutex_unlock(&ing->catalog_lock);
    if (!ok || !e) return;
    for (size_t i = 0; i < b->n; i++) b->msgs[i].checked = 1;
    b->checked_version = version;
}

/* Work for each message that needs no engine, done here on the caller's thread (an
 * HTTP thread, the import's parser) rather than on the one writer thread: the
 * properties printed as the store keeps them, and the messageId hashed for dedup. */
static void prepare_for_writer(ingest *ing, ingest_batch *b)
{
    size_t used = 0, *at = xmalloc((b->n ? b->n : 1) * sizeof *at);
    for (size_t i = 0; i < b->n; i++) {
        ingest_msg *m = &b->msgs[i];
        at[i] = SIZE_MAX;
        if (m->message_id) {
            dedup_key_of(b->source, m->message_id, 0, &m->dedup);
            m->has_dedup = 1;
        }
        if (m->kind != INGEST_TRACK && m->kind != INGEST_PAGE && m->kind != INGEST_SCREEN) continue;
        size_t len;
        if (ingest_print_props(m->item, m->kind, &b->props, &b->props_cap, used, &len)) {
            at[i] = used;
            m->props_len = len;
            used += len + 1;
        }
    }
    for (size_t i = 0; i < b->n; i++)     /* the arena has stopped moving */
        if (at[i] != SIZE_MAX) b->msgs[i].props_text = b->props + at[i];
    free(at);
    check_ahead(ing, b);
}

ingest_batch *ingest_prepare(ingest *ing, const char *source, cJSON *msgs, int kind_hint, unsigned flags,
                             cJSON **bad, segd_error *err)
{
    int is_batch = kind_hint < 0;
    if (bad) *bad = NULL;
    if (is_batch && !cJSON_IsArray(msgs)) {
        segd_error_set(err, 400, "invalid_batch", "batch must be an array of messages");
        return NULL;
    }
    size_t n = is_batch ? (size_t)cJSON_GetArraySize(msgs) : 1;
    ingest_batch *b = xcalloc(1, sizeof *b);
    b->source = source ? source : "default";
    b->msgs = xcalloc(n ? n : 1, sizeof *b->msgs);
    b->n = n;
    b->is_batch = is_batch;
    cJSON *errors = NULL;
    size_t i = 0;
    for (cJSON *item = is_batch ? msgs->child : msgs; i < n; item = item->next, i++) {
        segd_error e;
        segd_error_clear(&e);
        if (ingest_normalize_message(item, kind_hint, (int)i, ing->cfg.max_message_bytes, flags, &b->msgs[i], &e) == 0) {
            b->msgs[i].item = item;
            continue;
        }
        if (!is_batch) {
            *err = e;
            ingest_batch_free(b);
            return NULL;
        }
        if (!errors) errors = cJSON_CreateArray();
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "index", (double)i);
        cJSON_AddStringToObject(x, "field", e.field);
        cJSON_AddStringToObject(x, "code", e.code);
        cJSON_AddStringToObject(x, "message", e.message);
        cJSON_AddItemToArray(errors, x);
    }
    if (errors) {
        if (bad) explain_bad_batch(ing, b->source, b->msgs, n, errors, err);
        else segd_error_set(err, 400, "invalid_batch", "%d message(s) of the batch are invalid",
                            cJSON_GetArraySize(errors));
        ingest_batch_free(b);
        if (bad) *bad = errors;
        else cJSON_Delete(errors);
        return NULL;
    }
    prepare_for_writer(ing, b);
    return b;
}

struct ingest_ticket {
    ingest_op op;
    ingest_batch *b;
    int queued;                   /* 0: refused at once (op.result, op.err say why) or empty */
};

ingest_ticket *ingest_submit_begin(ingest *ing, ingest_batch *b)
{
    ingest_ticket *t = xcalloc(1, sizeof *t);
    t->b = b;
    ingest_op_init(&t->op, b->source, b->msgs, b->n, b->is_batch);
    t->op.checked_version = b->checked_version;
    if (b->n == 0) return t;
    pthread_mutex_lock(&ing->queue_lock);
    if (ing->stopping || ing->load_failed) {
        t->op.result = segd_error_set(&t->op.err, 503, "not_ready", ing->stopping ? "segd is shutting down; retry in a moment"
                                                                                  : "segd could not load its store; see the log");
    } else {
        t->queued = 1;
        enqueue(ing, &t->op);
    }
    pthread_mutex_unlock(&ing->queue_lock);
    return t;
}

int ingest_submit_end(ingest *ing, ingest_ticket *t, int *applied, cJSON **bad, segd_error *err)
{
    if (applied) *applied = 0;
    if (bad) *bad = NULL;
    if (t->queued) {
        pthread_mutex_lock(&ing->queue_lock);
        while (!t->op.done) pthread_cond_wait(&ing->done_cond, &ing->queue_lock);
        pthread_mutex_unlock(&ing->queue_lock);
    }
    int rc = t->op.result;
    if (rc != 0) *err = t->op.err;
    if (applied) *applied = t->op.applied;
    if (bad) *bad = t->op.bad;
    else cJSON_Delete(t->op.bad);
    free(t->op.added_ids);
    ingest_batch_free(t->b);
    free(t);
    return rc;
}

int ingest_submit(ingest *ing, ingest_batch *b, int *applied, cJSON **bad, segd_error *err)
{
    return ingest_submit_end(ing, ingest_submit_begin(ing, b), applied, bad, err);
}

int ingest_messages(ingest *ing, const char *source, cJSON *msgs, int kind_hint, unsigned flags,
                    int *applied, cJSON **bad, segd_error *err)
{
    if (applied) *applied = 0;
    ingest_batch *b = ingest_prepare(ing, source, msgs, kind_hint, flags, bad, err);
    if (!b) return segd_status_rc(err->status);
    return ingest_submit(ing, b, applied, bad, err);
}

int ingest_key_kind_parse(const char *s)
{
    if (!s || strcmp(s, "user_id") == 0) return INGEST_BY_USER_ID;
    if (strcmp(s, "anonymous_id") == 0) return INGEST_BY_ANONYMOUS_ID;
    if (strcmp(s, "email") == 0) return INGEST_BY_EMAIL;
    if (strcmp(s, "id") == 0) return INGEST_BY_ID;
    return -1;
}

char *ingest_public_id_format(uint64_t public_id, char *buf)
{
    buf[0] = 'p';
    buf[1] = '_';
    base32_format(public_id, 13, buf + 2);
    return buf;
}

static int parse_public_id(const char *s, uint64_t *out)
{
    if (strncmp(s, "p_", 2) != 0) return -1;
    return base32_parse(s + 2, 13, out);
}

person_id ingest_find_person(const engine *e, ingest_key_kind by, const char *key)
{
    size_t len = strlen(key);
    uint64_t pid;
    switch (by) {
    case INGEST_BY_USER_ID: return engine_person_by_user_id(e, key, len);
    case INGEST_BY_ANONYMOUS_ID: return engine_person_by_anonymous_id(e, key, len);
    case INGEST_BY_EMAIL: return engine_person_by_email(e, key, len);
    case INGEST_BY_ID: return parse_public_id(key, &pid) == 0 ? engine_person_by_public_id(e, pid) : PERSON_NONE;
    }
    return PERSON_NONE;
}

/* Runs one REST message (UPSERT, PATCH, ERASE, DECLARE, DROP) as its own op. */
static int run_single(ingest *ing, ingest_msg *m, ingest_op *op, segd_error *err)
{
    ingest_op_init(op, NULL, m, 1, 0);
    int rc = ingest_submit_op(ing, op, err);
    free(op->added_ids);
    return rc;
}

int ingest_upsert(ingest *ing, cJSON *body, int *created, uint64_t *public_id, segd_error *err)
{
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = INGEST_UPSERT;
    m.timestamp = timefmt_now_ms();
    int rc = 0;
    cJSON *wrap = NULL;
    if (!cJSON_IsObject(body)) {
        rc = segd_error_set(err, 400, "invalid_body", "send a JSON object with user_id (or anonymous_id) and attributes");
        goto done;
    }
    cJSON *uid = cJSON_GetObjectItemCaseSensitive(body, "user_id");
    cJSON *aid = cJSON_GetObjectItemCaseSensitive(body, "anonymous_id");
    if ((uid && (!cJSON_IsString(uid) || !uid->valuestring[0])) || (aid && (!cJSON_IsString(aid) || !aid->valuestring[0])) ||
        (!uid && !aid)) {
        snprintf(err->field, sizeof err->field, "user_id");
        rc = segd_error_set(err, 400, "missing_field", "send \"user_id\" or \"anonymous_id\" as a non-empty string");
        goto done;
    }
    m.user_id = uid ? uid->valuestring : NULL;
    m.anonymous_id = aid ? aid->valuestring : NULL;
    for (cJSON *c = body->child; c; c = c->next)
        if (strcmp(c->string, "user_id") && strcmp(c->string, "anonymous_id") && strcmp(c->string, "attributes") &&
            strcmp(c->string, "tags")) {
            snprintf(err->field, sizeof err->field, "%.100s", c->string);
            rc = segd_error_set(err, 400, "unknown_field",
                                "unknown field \"%.100s\"; a person takes user_id, anonymous_id, attributes and tags", c->string);
            goto done;
        }
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(body, "tags");
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(body, "attributes");
    if ((rc = ingest_normalize_fields(attrs, "attributes", 1, 0, &m.traits, err))) goto done;
    if (tags) {
        /* normalised as a "tags" trait; the fields borrow the wrapper's key, so it
         * lives until the message is released */
        wrap = cJSON_CreateObject();
        cJSON_AddItemReferenceToObject(wrap, "tags", tags);
        if ((rc = ingest_normalize_fields(wrap, "tags", 1, 0, &m.traits, err))) goto done;
    }
    for (size_t i = 0; i < m.traits.n; i++)
        if (strcmp(m.traits.v[i].name, "created_at") == 0) m.created_at_from_trait = 1;
    ingest_op op;
    rc = run_single(ing, &m, &op, err);
    if (rc == 0) {
        if (created) *created = op.created;
        if (public_id) *public_id = op.public_id;
    }
done:
    ingest_msg_release(&m);
    cJSON_Delete(wrap);
    return rc;
}

int ingest_patch(ingest *ing, ingest_key_kind by, const char *key, cJSON *body, segd_error *err)
{
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = INGEST_PATCH;
    m.key_by = by;
    m.key = key;
    int rc = 0;
    if (!cJSON_IsObject(body)) {
        rc = segd_error_set(err, 400, "invalid_body", "send a JSON object with \"attributes\" and/or \"tags\"");
        goto done;
    }
    for (cJSON *c = body->child; c; c = c->next)
        if (strcmp(c->string, "attributes") && strcmp(c->string, "tags")) {
            snprintf(err->field, sizeof err->field, "%.100s", c->string);
            rc = segd_error_set(err, 400, "unknown_field",
                                "unknown field \"%.100s\"; PATCH takes \"attributes\" and \"tags\"", c->string);
            goto done;
        }
    if ((rc = ingest_normalize_fields(cJSON_GetObjectItemCaseSensitive(body, "attributes"), "attributes", 1, 0,
                                      &m.traits, err)))
        goto done;
    for (size_t i = 0; i < m.traits.n; i++)
        if (strcmp(m.traits.v[i].name, "created_at") == 0) m.created_at_from_trait = 1;
    cJSON *tags = cJSON_GetObjectItemCaseSensitive(body, "tags");
    if (tags) {
        cJSON *add = cJSON_GetObjectItemCaseSensitive(tags, "add");
        cJSON *remove = cJSON_GetObjectItemCaseSensitive(tags, "remove");
        if (!cJSON_IsObject(tags) || (!add && !remove)) {
            snprintf(err->field, sizeof err->field, "tags");
            rc = segd_error_set(err, 400, "invalid_field", "tags must be {\"add\": [..], \"remove\": [..]}");
            goto done;
        }
        if (add && (rc = ingest_string_array(add, "tags.add", &m.tags_add, &m.n_tags_add, err))) goto done;
        if (remove && (rc = ingest_string_array(remove, "tags.remove", &m.tags_remove, &m.n_tags_remove, err)))
            goto done;
    }
    ingest_op op;
    rc = run_single(ing, &m, &op, err);
done:
    ingest_msg_release(&m);
    return rc;
}

int ingest_erase(ingest *ing, ingest_key_kind by, const char *key, segd_error *err)
{
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = INGEST_ERASE;
    m.key_by = by;
    m.key = key;
    ingest_op op;
    return run_single(ing, &m, &op, err);
}

int ingest_declare_attribute(ingest *ing, const char *name, const char *type_name, segd_error *err)
{
    segd_type t = type_name ? segd_type_parse(type_name) : SEGD_T_NONE;
    if (!name || !ingest_name_valid(name, strlen(name))) {
        snprintf(err->field, sizeof err->field, "name");
        return segd_error_set(err, 400, "invalid_name",
                              "name must be 1-128 bytes of UTF-8, not starting with '$', without control characters");
    }
    if (t == SEGD_T_NONE || t == SEGD_T_JSON) {
        snprintf(err->field, sizeof err->field, "type");
        return segd_error_set(err, 400, "invalid_type",
                              "type must be one of string, number, boolean, datetime, list");
    }
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = INGEST_DECLARE;
    m.attr_name = name;
    m.attr_type = t;
    ingest_op op;
    return run_single(ing, &m, &op, err);
}

int ingest_declare_event_type(ingest *ing, const cJSON *body, int *created, segd_error *err)
{
    *created = 0;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "name");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(body, "properties");
    if (!cJSON_IsObject(body) || !cJSON_IsString(name) || !ingest_name_valid(name->valuestring, strlen(name->valuestring))) {
        snprintf(err->field, sizeof err->field, "name");
        return segd_error_set(err, 400, "invalid_name",
                              "send {\"name\": EVENT, \"properties\": {NAME: TYPE}}; a name is 1-128 bytes of UTF-8, "
                              "not starting with '$', without control characters");
    }
    for (const cJSON *it = body->child; it; it = it->next)
        if (strcmp(it->string, "name") != 0 && strcmp(it->string, "properties") != 0) {
            snprintf(err->field, sizeof err->field, "%.100s", it->string);
            return segd_error_set(err, 400, "unknown_field", "\"%.100s\" is not a field of an event type; send name and properties",
                                  it->string);
        }
    if (props && !cJSON_IsObject(props)) {
        snprintf(err->field, sizeof err->field, "properties");
        return segd_error_set(err, 400, "invalid_field", "\"properties\" is an object of property name -> type");
    }
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = INGEST_DECLARE_EVENT;
    m.event = name->valuestring;
    int rc = 0;
    for (const cJSON *p = props ? props->child : NULL; p; p = p->next) {
        segd_type t = cJSON_IsString(p) ? segd_type_parse(p->valuestring) : SEGD_T_NONE;
        if (!ingest_name_valid(p->string, strlen(p->string)) || t == SEGD_T_NONE) {
            snprintf(err->field, sizeof err->field, "properties.%.100s", p->string);
            rc = segd_error_set(err, 400, t == SEGD_T_NONE ? "invalid_type" : "invalid_name",
                                "property \"%.100s\": the type is one of string, number, boolean, datetime, list, json, "
                                "and a name is 1-128 bytes of UTF-8 not starting with '$'", p->string);
            goto done;
        }
        for (size_t k = 0; k < m.props.n; k++)
            if (strcmp(m.props.v[k].name, p->string) == 0) {
                snprintf(err->field, sizeof err->field, "properties.%.100s", p->string);
                rc = segd_error_set(err, 400, "duplicate_key", "property \"%.100s\" is declared twice", p->string);
                goto done;
            }
        m.props.v = xgrow(m.props.v, sizeof *m.props.v, &m.props.cap, m.props.n + 1, 8);
        memset(&m.props.v[m.props.n], 0, sizeof m.props.v[0]);
        m.props.v[m.props.n].name = p->string;
        m.props.v[m.props.n].natural = t;
        m.props.n++;
    }
    ingest_op op;
    rc = run_single(ing, &m, &op, err);
    if (rc == 0) *created = op.created;
done:
    ingest_fields_release(&m.props);
    return rc;
}

int ingest_drop_attribute(ingest *ing, const char *name, segd_error *err)
{
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = INGEST_DROP;
    m.attr_name = name;
    ingest_op op;
    return run_single(ing, &m, &op, err);
}
