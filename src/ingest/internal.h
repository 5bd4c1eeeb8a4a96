/* internal.h - what the files of ingest/ share and nobody else sees: the normalised
 * message, the op queued to the writer thread, and the ingest struct itself. */
#ifndef SEGD_INGEST_INTERNAL_H
#define SEGD_INGEST_INTERNAL_H

#include <pthread.h>

#include "ingest.h"
#include "dedup.h"
#include "../segments/segments.h"

/* One attribute or property value as it arrived, before the catalog decides its
 * type. `natural` is the type the JSON value has by itself (a date-time string is
 * DATETIME). `text` keeps the string form so a declared string attribute can take a
 * date-time-looking value unchanged. */
typedef struct ingest_field {
    char *name;               /* nested objects flattened with '.' */
    int name_owned;           /* name was allocated (flattened), else it is a key of the tree */
    segd_type natural;        /* SEGD_T_NONE for JSON null (clears an attribute) */
    segd_value value;         /* typed by `natural`; strings point into the cJSON tree or `owned` */
    const char *text;         /* the string as sent (STRING / DATETIME), else NULL */
    size_t text_len;
    char *owned;              /* owned text for JSON-typed values, else NULL */
    int from_text;            /* the value was text (CSV): may be read as the catalog's type */
    const char **items;       /* owned array for LIST values */
} ingest_field;

typedef struct ingest_fields {
    ingest_field *v;
    size_t n, cap;
} ingest_fields;

/* Internal kinds beyond the Segment ones of ingest_kind. */
enum {
    INGEST_UPSERT = 100,      /* POST /api/people */
    INGEST_PATCH,             /* PATCH /api/people/{key} */
    INGEST_ERASE,             /* DELETE /api/people/{key} */
    INGEST_DECLARE,           /* POST /api/attributes */
    INGEST_DROP,              /* DELETE /api/attributes/{name} */
    INGEST_DECLARE_EVENT,     /* POST /api/event-types: event, props (natural = declared type) */
    INGEST_SEG_CREATE,        /* POST /api/segments: seg_input, seg_created_by */
    INGEST_SEG_UPDATE,        /* PATCH /api/segments/{id}: seg_id, seg_input (fields present replace) */
    INGEST_SEG_DELETE,        /* DELETE /api/segments/{id}: seg_id */
    INGEST_SEG_RECALC,        /* POST /api/segments/{id}/recalculate: seg_id */
    INGEST_TICK,              /* the clock: due re-checks, history points, cached-results refreshes */
};

/* A segment body as parsed (segs.c): which fields were sent, and their values
 * (strings point into the cJSON body; the filter and the arrays are owned). */
typedef struct ingest_segment_input {
    const char *name;
    const char *description;
    filter_node *filter;          /* parsed, not bound */
    const char **hidden_from, **default_for;
    size_t n_hidden_from, n_default_for;
    int64_t refresh_ms;           /* 0: the default */
    int backfill;
    int has_name, has_description, has_hidden_from, has_default_for, has_refresh;
} ingest_segment_input;

/* Someone who left during an op: erased, or merged into another person. */
typedef struct ingest_departed {
    person_id person;
    uint64_t public_id;           /* read before they left: the log still names them */
    int cause;                    /* SEG_CAUSE_ERASURE or SEG_CAUSE_MERGE */
} ingest_departed;

/* What ingest keeps per segment slot beside the segment set. */
typedef struct ingest_seg_slot {
    int64_t num;                  /* the segment's key in the store */
    int changed;                  /* members changed since the last checkpoint was written */
    int silent;                   /* ... by a change the log does not hold (a definition's):
                                     the checkpoint must be written in the same op */
} ingest_seg_slot;

/* What the op being applied changed, for the segments that read it. */
typedef struct ingest_change {
    int *attrs, *types;
    size_t n_attrs, attrs_cap, n_types, types_cap;
    int all;                      /* a merge: anything may have changed */
    ingest_departed *departed;
    size_t n_departed, departed_cap;
    person_id *people;            /* who the op's messages were about (repeats allowed) */
    size_t n_people, people_cap;
    person_id *created;           /* people the op created: for them anything changed, from
                                     "nobody" to a person whom any filter may match */
    size_t n_created, created_cap;
} ingest_change;

typedef struct ingest_msg {
    int kind;
    int index;                    /* position in its batch, for errors */
    const char *user_id;          /* these point into the request's cJSON tree */
    const char *anonymous_id;
    const char *previous_id;      /* alias */
    const char *message_id;
    const char *event;            /* track / page / screen event name */
    const char *group_id;
    int64_t timestamp;            /* ms UTC */
    ingest_fields traits;         /* identify traits, upsert / patch attributes */
    ingest_fields props;          /* event properties */
    int created_at_from_trait;    /* traits set created_at explicitly */
    int replace_tags;             /* traits carried "tags" (replaces the list) */
    const char **tags_add, **tags_remove;   /* PATCH tags (owned arrays) */
    size_t n_tags_add, n_tags_remove;
    ingest_key_kind key_by;       /* PATCH / ERASE: which person */
    const char *key;
    const char *attr_name;        /* DECLARE / DROP */
    segd_type attr_type;
    cJSON *item;                  /* the message object itself */
    const char *seg_id;           /* segment ops */
    ingest_segment_input *seg_input;
    const char *seg_created_by;
    /* Filled by ingest_prepare on the caller's thread, so the writer does not have to: */
    const char *props_text;       /* track/page/screen: the properties as stored (printed
                                     JSON, in the batch's arena), or NULL for none */
    size_t props_len;
    dedup_key dedup;              /* the (source, messageId) hash, when has_dedup */
    int has_dedup;
    /* Checked ahead against the catalog (ingest_prepare, see ingest_op.checked_version):
     * the event type, and per property its index and value as the catalog types it. */
    int checked;
    int event_type;
    int *prop_index;              /* props.n of each, in the batch's arrays */
    segd_value *prop_values;
} ingest_msg;

/* A request waiting for the writer: its messages and, once done, its result. */
typedef struct ingest_op {
    const char *source;
    ingest_msg *msgs;
    size_t n_msgs;
    int is_batch;                 /* invalid messages give 400 (batch) or 422 (single) */
    int validate_only;            /* check against the catalog, apply nothing (to name every bad message) */
    uint64_t checked_version;     /* nonzero: every message was checked against the catalog at
                                     this catalog_version; the writer skips the check if the
                                     catalog is still at it */
    int result;                   /* 0 or negative */
    segd_error err;
    cJSON *bad;                   /* per-message errors for batches, or NULL */
    int applied;
    int applied_events;
    int deduplicated;
    const char **added_ids;       /* message ids this op added to the dedup set (undone if the group fails) */
    size_t n_added, added_cap;
    int created;                  /* UPSERT: created a person */
    uint64_t public_id;           /* UPSERT: the person's public id */
    char seg_id[SEGMENT_ID_LEN + 1];   /* SEG_CREATE: the new segment's id */
    int done;
    struct ingest_op *next;
} ingest_op;

struct ingest {
    ingest_config cfg;
    store *st;
    engine *eng;
    pthread_rwlock_t lock;        /* readers vs the writer thread */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond;    /* the writer waits for ops */
    pthread_cond_t done_cond;     /* submitters wait for their op */
    ingest_op *queue_head, *queue_tail;
    int stopping;
    int ready;                    /* engine rebuilt, writer serving */
    int load_failed;              /* the rebuild failed: load_error says why */
    segd_error load_error;
    pthread_cond_t ready_cond;
    pthread_t writer;
    int writer_started;
    /* The event catalog (types, properties) as ingest_prepare may read it on other
     * threads without the engine's lock: the writer changes it, or replaces the engine,
     * only holding catalog_lock, and bumps catalog_version each time. Appends and
     * attribute changes do not touch what those lookups read. */
    pthread_mutex_t catalog_lock;
    uint64_t catalog_version;
    dedup_set *dedup;
    size_t dedup_expect;          /* ingest_expect_messages, taken by the writer (atomic) */
    uint8_t *created_pinned;      /* bit per person: created_at came from a trait */
    size_t created_pinned_cap;
    int fail_nth_write;           /* test hook, read by the writer */
    uint64_t random_pool[64];     /* random public ids drawn ahead (writer thread) */
    size_t random_left;
    ingest_stats stats;
    pthread_mutex_t stats_lock;
    /* segments (segs.c): kept by the writer under the write lock, read under the read lock */
    segments *segs;
    ingest_seg_slot *seg_slot;    /* per slot: the segment's key in the store, ... */
    size_t seg_slot_cap;
    int64_t last_seq;             /* the highest transition seq written */
    ingest_change chg;            /* what the op being applied changed */
    int64_t next_history_ms;      /* the next hourly size point */
    int64_t test_now_ms;          /* the test clock (atomic), 0 when not set */
};

/* ingest.c: an op over msgs, ready to submit. */
void ingest_op_init(ingest_op *op, const char *source, ingest_msg *msgs, size_t n, int is_batch);

/* ingest.c: queues an op and waits until the writer has committed or failed it. */
int ingest_submit_op(ingest *ing, ingest_op *op, segd_error *err);

/* segs.c: the change notes of the op being applied (writer thread). */
void ingest_chg_reset(ingest *ing);
void ingest_chg_attr(ingest *ing, int attr);
void ingest_chg_type(ingest *ing, int type);
void ingest_chg_departed(ingest *ing, person_id p, int cause);   /* call before they leave */
void ingest_chg_person(ingest *ing, person_id p);
void ingest_chg_created(ingest *ing, person_id p);

/* segs.c: after an op was applied: re-checks the people it was about (and those who
 * left) in the segments that read what changed, and stores the transitions. */
int ingest_segments_after_op(ingest *ing, int64_t now);

/* segs.c: applies a segment op or the tick (one message of kind INGEST_SEG_* / TICK). */
int ingest_segment_op(ingest *ing, ingest_op *op, ingest_msg *m);

/* segs.c: restores the segment set from the store over the current engine and stores
 * what changed meanwhile (its own transaction: call outside one). */
int ingest_segments_load(ingest *ing, segd_error *err);

/* segs.c: when the writer must next run a tick (INT64_MAX: nothing scheduled). */
int64_t ingest_segments_next_due(ingest *ing);

/* segs.c: parses a segment body; partial (PATCH) allows any field to be missing. */
int ingest_segment_input_parse(const cJSON *body, ingest_segment_input *p, int partial, segd_error *err);
void ingest_segment_input_release(ingest_segment_input *p);

/* normalize.c: turns one Segment message into an ingest_msg. Returns 0, or a negative
 * code with err (status 400, field) filled. `kind` is the URL's kind or -1 to read
 * "type". max_bytes bounds the message's printed size. */
int ingest_normalize_message(cJSON *obj, int kind, int index, size_t max_bytes, unsigned flags,
                             ingest_msg *m, segd_error *err);

/* normalize.c: reads an object of attributes (traits, properties, REST attributes)
 * into fields, flattening nested objects. Returns 0 or fills err. */
int ingest_normalize_fields(cJSON *obj, const char *what, int allow_null, unsigned flags,
                            ingest_fields *out, segd_error *err);

/* apply.c: the value to store for a field under a catalog type (SEGD_T_NONE: not yet
 * declared, the field's natural type is taken). Returns 0 and fills *out (strings point
 * into the field), or SEGD_ECONFLICT when the value does not fit the type. */
int ingest_resolve_value(const ingest_field *f, segd_type type, segd_value *out);

/* normalize.c: parses a JSON array of strings into an owned array (strings point into
 * the tree). Returns 0 or fills err naming `what`. */
int ingest_string_array(cJSON *arr, const char *what, const char ***items, size_t *n, segd_error *err);

/* normalize.c: prints the properties of a track / page / screen message as the store
 * keeps them (the "properties" object as sent; page and screen add "name") at
 * (*buf)[at..], growing *buf (*cap bytes). Returns 1 and the text's length in *len,
 * or 0 when the event has no properties (none, or an empty object). */
int ingest_print_props(cJSON *item, int kind, char **buf, size_t *cap, size_t at, size_t *len);

/* normalize.c: frees the names and values of fields (not the cJSON tree). */
void ingest_fields_release(ingest_fields *f);

/* normalize.c: releases what a message owns (not the cJSON tree). */
void ingest_msg_release(ingest_msg *m);

/* apply.c: validates then applies one op inside the writer's transaction. Returns 0,
 * a negative validation code (nothing changed), or SEGD_EIO when the store failed (the
 * caller rolls the savepoint back and rebuilds the engine). */
int ingest_apply_op(ingest *ing, ingest_op *op);

/* rebuild.c: builds a fresh engine from the store and returns it (NULL and err on
 * failure). Also resets the created_at pins. */
engine *ingest_rebuild_engine(ingest *ing, segd_error *err);

/* person_json.c: the person's stored JSON object (attributes, plus "$created_pinned"). */
char *ingest_person_store_json(ingest *ing, person_id id, size_t *len);

/* apply.c: takes in a message of the person at t: last_seen becomes the newest
 * message time, created_at the oldest unless a trait pinned it. `e` is the engine being
 * written (the live one, or the one a rebuild fills). */
void ingest_see_time(ingest *ing, engine *e, person_id id, int64_t t);

/* created_at pin bits. */
int ingest_pinned(const ingest *ing, person_id id);
void ingest_set_pinned(ingest *ing, person_id id, int pinned);

/* 1 if name[0..len) may name an attribute, property or event type: 1-128 bytes of
 * UTF-8, not starting with '$' (segd's own keys), without control characters. */
int ingest_name_valid(const char *name, size_t len);

/* 1 if s[0..len) is valid UTF-8 without NUL bytes. */
int ingest_utf8_valid(const char *s, size_t len);

#endif
