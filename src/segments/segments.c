/* segments.c - the set of segments, their members and the dependency order
 * (segments.h).
 *
 * Slots are stable while a segment lives (a deleted slot is reused); ids are random.
 * A definition change rebuilds the evaluation order (dependencies first, a cycle
 * refused) and each segment's list of what it reads. A write re-checks, in that order,
 * the segments that read a changed attribute or event type, or a segment whose
 * membership of this person has just flipped. Members are CRoaring bitmaps: compact
 * for small segments and fast to test, add and remove one person.
 */
#include "segments.h"
#include "../base/alloc.h"
#include "../base/base32.h"

#include <roaring/roaring.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct segment {
    int live;
    char id[SEGMENT_ID_LEN + 1];
    char *name;
    char *description;
    char *created_by;
    char **hidden_from;
    size_t n_hidden_from;
    char **default_for;
    size_t n_default_for;
    filter_node *filter;           /* bound */
    int64_t created_at, updated_at, refresh_ms, cached_at;
    roaring_bitmap_t *members;
    roaring_bitmap_t *snapshot;
    /* what the filter reads (sorted, unique) */
    int *attrs;
    size_t n_attrs;
    int *types;
    size_t n_types;
    int *segs;                     /* slots named by in / not_in (membership flips matter) */
    size_t n_segs;
    int *all_segs;                 /* slots named at all (in_cached too): for cycles and deletion */
    size_t n_all_segs;
    uint64_t shape;                /* a hash of the filter as written: segments with the same
                                      filter share one answer per person and moment */
    int blank;                     /* a person with no attributes and no events matches */
    /* the clock: time-relative filters only */
    int timed;
    int64_t *due;                  /* per person: the scheduled moment, INT64_MAX none */
    uint32_t due_cap;
    uint64_t n_due;                /* persons with a moment */
} segment;

/* One scheduled re-check; current while segment[slot].due[person] == moment. */
typedef struct due_entry {
    int64_t moment;
    person_id person;
    int slot;
} due_entry;

struct segments {
    segment *v;
    int n;
    size_t cap;
    int *order;                    /* live slots, every segment after those it reads */
    int n_order;
    /* the clock's calendar: a ring of buckets of 2^DUE_SHIFT ms (bucket id = moment >>
     * DUE_SHIFT) covering DUE_RING buckets from base_id on, with a bit per non-empty
     * bucket; moments beyond the ring wait in `far`. Scheduling appends to a bucket; the
     * clock sorts one bucket at a time and takes its entries in moment order. Entries a
     * later schedule replaced stay until their bucket is reached (stale: due[] says). */
    struct due_bucket { due_entry *v; uint32_t n, cap; int64_t id, min; } *ring;   /* min: earliest moment */
    uint64_t *ring_bits;           /* DUE_RING bits: bucket non-empty */
    int64_t base_id;
    int64_t max_id;                /* no ring entry has a larger bucket id */
    due_entry *far;
    size_t n_far, far_cap;
    uint64_t n_entries;            /* in the ring and far, stale ones included */
    /* the bucket the clock is taking entries from: a heap, so that moments scheduled
     * into it meanwhile come out in order too */
    int64_t run_id;                /* INT64_MIN: none */
    due_entry *run;
    size_t n_run, run_cap;
    filter_cache *cache;           /* event metrics shared by the segments re-checked for one
                                      person at one moment; reset whenever the engine may
                                      have changed */
    int *by_id;                    /* id -> slot + 1 (0: empty), open addressing */
    size_t by_id_mask;
    /* the dependency index, rebuilt with the order: for each attribute, event type and
     * slot, the positions in `order` of the segments that read it (ascending), as
     * offsets into one array each (CSR) */
    int *attr_off, *attr_pos, n_attr_index;
    int *type_off, *type_pos, n_type_index;
    int *seg_off, *seg_pos;
    int *pos_of;                   /* slot -> its position in order */
    uint64_t *blank_pos;           /* order positions of the segments a blank person matches */
    int blanks_stale;              /* the order changed since blank_pos was computed */
    /* answers of one segments_person_changed call by filter shape (open addressing,
     * entries of older calls told apart by gen) */
    struct shape_memo { uint64_t shape; uint32_t gen; int is; int64_t moment; } *memo;
    size_t memo_mask;
    uint32_t memo_gen;
    /* every membership again, person by person: pm[p * pm_stride + slot / 64] holds the
     * bit of (slot, p), so that the hundreds of segments one write re-checks read one or
     * two cache lines for "was a member" instead of a bitmap each */
    uint64_t *pm;
    uint32_t pm_stride;            /* words per person */
    uint32_t pm_people;            /* people the array covers */
};

void seg_transitions_release(seg_transitions *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

static void push_transition(seg_transitions *t, int slot, person_id p, seg_direction dir, seg_cause cause, int64_t at,
                            int silent)
{
    t->v = xgrow(t->v, sizeof *t->v, &t->cap, t->n + 1, 64);
    t->v[t->n++] = (seg_transition){ slot, p, dir, cause, at, silent };
}

const char *seg_cause_name(int cause)
{
    switch (cause) {
    case SEG_CAUSE_WRITE: return "write";
    case SEG_CAUSE_CLOCK: return "clock";
    case SEG_CAUSE_ERASURE: return "erasure";
    case SEG_CAUSE_DEFINITION: return "definition";
    case SEG_CAUSE_MERGE: return "merge";
    }
    return "unknown";
}

segments *segments_new(void)
{
    segments *s = xcalloc(1, sizeof(segments));
    s->cache = filter_cache_new();
    return s;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Frees a slot's definition (not its members). */
static void definition_release(segment *g)
{
    free(g->name);
    free(g->description);
    free(g->created_by);
    free_list(g->hidden_from, g->n_hidden_from);
    free_list(g->default_for, g->n_default_for);
    filter_free(g->filter);
    free(g->attrs);
    free(g->types);
    free(g->segs);
    free(g->all_segs);
    g->name = g->description = g->created_by = NULL;
    g->hidden_from = g->default_for = NULL;
    g->n_hidden_from = g->n_default_for = 0;
    g->filter = NULL;
    g->attrs = g->types = g->segs = g->all_segs = NULL;
    g->n_attrs = g->n_types = g->n_segs = g->n_all_segs = 0;
}

static void slot_release(segment *g)
{
    free(g->due);
    definition_release(g);
    if (g->members) roaring_bitmap_free(g->members);
    if (g->snapshot) roaring_bitmap_free(g->snapshot);
    memset(g, 0, sizeof *g);
}

static void ring_free(segments *s);

void segments_free(segments *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) slot_release(&s->v[i]);
    free(s->v);
    free(s->order);
    ring_free(s);
    free(s->by_id);
    free(s->attr_off);
    free(s->attr_pos);
    free(s->type_off);
    free(s->type_pos);
    free(s->seg_off);
    free(s->seg_pos);
    free(s->pos_of);
    free(s->memo);
    free(s->blank_pos);
    free(s->pm);
    filter_cache_free(s->cache);
    free(s);
}

int segments_slots(const segments *s)
{
    return s->n;
}

static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;            /* FNV-1a */
    for (; *id; id++) h = (h ^ (uint8_t)*id) * 16777619u;
    return h;
}

/* Rebuilds the id -> slot table (open addressing, at most half full) after a segment
 * was made or deleted: segment conditions look their segment up by id on every check. */
static void index_ids(segments *s)
{
    size_t cap = 16;
    while (cap < (size_t)s->n * 2 + 2) cap *= 2;
    free(s->by_id);
    s->by_id = xcalloc(cap, sizeof *s->by_id);
    s->by_id_mask = cap - 1;
    for (int i = 0; i < s->n; i++) {
        if (!s->v[i].live) continue;
        size_t k = id_hash(s->v[i].id) & s->by_id_mask;
        while (s->by_id[k]) k = (k + 1) & s->by_id_mask;
        s->by_id[k] = i + 1;
    }
}

int segments_find(const segments *s, const char *id)
{
    if (!id || !s->by_id) return -1;
    for (size_t k = id_hash(id) & s->by_id_mask; s->by_id[k]; k = (k + 1) & s->by_id_mask) {
        int slot = s->by_id[k] - 1;
        if (strcmp(s->v[slot].id, id) == 0) return slot;
    }
    return -1;
}

int segments_view(const segments *s, int slot, segment_view *out)
{
    memset(out, 0, sizeof *out);
    if (slot < 0 || slot >= s->n || !s->v[slot].live) return 0;
    const segment *g = &s->v[slot];
    out->id = g->id;
    out->name = g->name;
    out->description = g->description;
    out->filter = g->filter;
    out->hidden_from = (const char *const *)g->hidden_from;
    out->n_hidden_from = g->n_hidden_from;
    out->default_for = (const char *const *)g->default_for;
    out->n_default_for = g->n_default_for;
    out->created_by = g->created_by;
    out->created_at = g->created_at;
    out->updated_at = g->updated_at;
    out->refresh_ms = g->refresh_ms;
    out->size = roaring_bitmap_get_cardinality(g->members);
    out->cached_size = g->snapshot ? roaring_bitmap_get_cardinality(g->snapshot) : 0;
    out->cached_at = g->cached_at;
    return 1;
}

/* ---- membership and the resolver ---- */

/* Makes pm cover person p and every slot. */
static void pm_fit(segments *s, person_id p)
{
    uint32_t stride = s->pm_stride ? s->pm_stride : 1;
    while ((uint32_t)s->n > stride * 64) stride *= 2;
    uint32_t people = s->pm_people ? s->pm_people : 1024;
    while (people <= p) people *= 2;
    if (stride == s->pm_stride && people == s->pm_people) return;
    uint64_t *pm = xcalloc((size_t)people * stride, sizeof *pm);
    for (uint32_t q = 0; q < s->pm_people; q++)
        memcpy(pm + (size_t)q * stride, s->pm + (size_t)q * s->pm_stride, s->pm_stride * sizeof *pm);
    free(s->pm);
    s->pm = pm;
    s->pm_stride = stride;
    s->pm_people = people;
}

static int pm_get(const segments *s, int slot, person_id p)
{
    if (p >= s->pm_people || (uint32_t)slot >= s->pm_stride * 64) return 0;
    return (int)(s->pm[(size_t)p * s->pm_stride + (uint32_t)slot / 64] >> (slot % 64) & 1);
}

/* Sets or clears the bit of (slot, p) in a pm that already covers them. */
static void pm_write(segments *s, int slot, person_id p, int on)
{
    uint64_t *w = &s->pm[(size_t)p * s->pm_stride + (uint32_t)slot / 64];
    if (on) *w |= 1ULL << (slot % 64);
    else *w &= ~(1ULL << (slot % 64));
}

static void pm_set(segments *s, int slot, person_id p, int on)
{
    pm_fit(s, p);
    pm_write(s, slot, p, on);
}

typedef struct pm_ctx {
    segments *s;
    int slot, on;
} pm_ctx;

static bool pm_each(uint32_t p, void *ctx)
{
    pm_ctx *c = ctx;
    pm_write(c->s, c->slot, p, c->on);   /* pm_set_all fitted pm to the largest first */
    return true;
}

/* Sets (on) or clears the slot's bit of every person in r. */
static void pm_set_all(segments *s, int slot, const roaring_bitmap_t *r, int on)
{
    uint32_t last;
    if (roaring_bitmap_is_empty(r)) return;
    last = roaring_bitmap_maximum(r);
    pm_fit(s, last);
    pm_ctx c = { s, slot, on };
    roaring_iterate(r, pm_each, &c);
}

int segments_is_member(const segments *s, int slot, person_id p, int cached)
{
    if (slot < 0 || slot >= s->n || !s->v[slot].live) return 0;
    if (!cached) return pm_get(s, slot, p);
    const roaring_bitmap_t *r = s->v[slot].snapshot;
    return r && roaring_bitmap_contains(r, p);
}

static bool or_into(uint32_t v, void *words)
{
    ((uint64_t *)words)[v >> 6] |= (uint64_t)1 << (v & 63);
    return true;
}

void segments_members(const segments *s, int slot, int cached, uint64_t *words)
{
    if (slot < 0 || slot >= s->n || !s->v[slot].live) return;
    const roaring_bitmap_t *r = cached ? s->v[slot].snapshot : s->v[slot].members;
    if (r) roaring_iterate(r, or_into, words);
}

static int resolver_check(void *ctx, const char *id)
{
    return segments_find(ctx, id) >= 0 ? 0 : SEGD_ENOTFOUND;
}

static int resolver_members(void *ctx, const char *id, int cached, uint64_t *out, uint32_t limit)
{
    (void)limit;
    int slot = segments_find(ctx, id);
    if (slot < 0) return SEGD_ENOTFOUND;
    segments_members(ctx, slot, cached, out);
    return 0;
}

static int resolver_is_member(void *ctx, const char *id, int cached, person_id p)
{
    int slot = segments_find(ctx, id);
    if (slot < 0) return SEGD_ENOTFOUND;
    return segments_is_member(ctx, slot, p, cached);
}

filter_resolver segments_resolver(segments *s)
{
    return (filter_resolver){ s, resolver_check, resolver_members, resolver_is_member };
}

/* ---- the clock's calendar ---- */

#define DUE_SHIFT 16               /* buckets of 65.5 s */
#define DUE_RING (1u << 18)        /* about 6 months of buckets */

static void ring_init(segments *s)
{
    if (s->ring) return;
    s->ring = xcalloc(DUE_RING, sizeof *s->ring);
    s->ring_bits = xcalloc(DUE_RING / 64, sizeof *s->ring_bits);
    s->base_id = INT64_MIN;
    s->run_id = INT64_MIN;
}

static void entry_push(due_entry **v, size_t *n, size_t *cap, due_entry x)
{
    *v = xgrow(*v, sizeof **v, cap, *n + 1, 64);
    (*v)[(*n)++] = x;
}

/* Min-heap on (moment) for the bucket being run. */
static void run_push(segments *s, due_entry x)
{
    s->run = xgrow(s->run, sizeof *s->run, &s->run_cap, s->n_run + 1, 256);
    size_t i = s->n_run++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->run[parent].moment <= x.moment) break;
        s->run[i] = s->run[parent];
        i = parent;
    }
    s->run[i] = x;
}

static due_entry run_pop(segments *s)
{
    due_entry top = s->run[0], x = s->run[--s->n_run];
    size_t i = 0, n = s->n_run;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        int64_t mv = x.moment;
        if (l < n && s->run[l].moment < mv) { m = l; mv = s->run[l].moment; }
        if (r < n && s->run[r].moment < mv) m = r;
        if (m == i) break;
        s->run[i] = s->run[m];
        i = m;
    }
    if (n) s->run[i] = x;
    return top;
}

/* Starts the ring at bucket id, earlier than base_id (an entry earlier than every bucket:
 * a segment defined after others with later moments, or a clock set back); buckets that
 * no longer fit in the ring go to far until the ring reaches them again. */
static void lower_base(segments *s, int64_t id)
{
    if (s->max_id - id >= (int64_t)DUE_RING)
        for (uint32_t w = 0; w < DUE_RING / 64; w++)
            for (uint64_t bits = s->ring_bits[w]; bits; bits &= bits - 1) {
                uint32_t k = w * 64 + (uint32_t)__builtin_ctzll(bits);
                struct due_bucket *b = &s->ring[k];
                if (b->id < id + (int64_t)DUE_RING) continue;
                for (uint32_t i = 0; i < b->n; i++) entry_push(&s->far, &s->n_far, &s->far_cap, b->v[i]);
                b->n = 0;
                s->ring_bits[w] &= ~(1ULL << (k % 64));
            }
    s->base_id = id;
    if (s->max_id >= id + (int64_t)DUE_RING) s->max_id = id + (int64_t)DUE_RING - 1;
}

/* Files an entry: into the running bucket's heap, the ring, or far. */
static void due_add(segments *s, due_entry x)
{
    ring_init(s);
    int64_t id = x.moment >> DUE_SHIFT;
    s->n_entries++;
    if (id == s->run_id) {
        run_push(s, x);
        return;
    }
    if (s->base_id == INT64_MIN) s->base_id = s->max_id = id;
    if (id < s->base_id) lower_base(s, id);   /* earlier than every bucket: the ring starts there */
    if (id >= s->base_id + (int64_t)DUE_RING) {
        entry_push(&s->far, &s->n_far, &s->far_cap, x);
        return;
    }
    uint32_t k = (uint32_t)(id & (DUE_RING - 1));
    struct due_bucket *b = &s->ring[k];
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->v = xrealloc(b->v, b->cap * sizeof *b->v);
    }
    if (!b->n || x.moment < b->min) b->min = x.moment;
    b->id = id;
    b->v[b->n++] = x;
    s->ring_bits[k / 64] |= 1ULL << (k % 64);
    if (id > s->max_id) s->max_id = id;
}

/* The first non-empty bucket id from base_id on, or INT64_MAX. */
static int64_t first_bucket(const segments *s)
{
    if (!s->ring || s->base_id == INT64_MIN) return INT64_MAX;
    uint32_t start = (uint32_t)(s->base_id & (DUE_RING - 1));
    for (uint32_t step = 0; step <= DUE_RING; step += 64) {
        /* the 64 buckets from base_id + step on, in ring order */
        uint32_t k = (start + step) & (DUE_RING - 1), w = k / 64, off = k % 64;
        uint64_t bits = s->ring_bits[w] >> off;
        if (off) bits |= s->ring_bits[(w + 1) % (DUE_RING / 64)] << (64 - off);
        if (step + 64 > DUE_RING) bits &= (1ULL << (DUE_RING - step)) - 1;
        if (bits) return s->base_id + step + __builtin_ctzll(bits);
    }
    return INT64_MAX;
}

/* Moves base_id on to id (nothing before it is left) and far entries into the ring. */
static void advance(segments *s, int64_t id)
{
    if (id <= s->base_id) return;
    s->base_id = id;
    due_entry *far = s->far;
    size_t n = s->n_far;
    s->far = NULL;
    s->n_far = s->far_cap = 0;
    for (size_t i = 0; i < n; i++) {
        s->n_entries--;
        due_add(s, far[i]);
    }
    free(far);
}

static int entry_current(const segments *s, due_entry x)
{
    const segment *g = &s->v[x.slot];
    return g->live && g->due && x.person < g->due_cap && g->due[x.person] == x.moment;
}

/* Drops stale entries once they outnumber the current ones (writes re-schedule people
 * without removing their old entries). */
static void due_trim(segments *s)
{
    uint64_t current = 0;
    for (int i = 0; i < s->n; i++) current += s->v[i].live ? s->v[i].n_due : 0;
    if (!s->ring || s->n_entries < 4096 || s->n_entries <= 2 * current) return;
    s->n_entries = 0;
    for (uint32_t w = 0; w < DUE_RING / 64; w++)
        for (uint64_t bits = s->ring_bits[w]; bits; bits &= bits - 1) {
            uint32_t k = w * 64 + (uint32_t)__builtin_ctzll(bits);
            struct due_bucket *b = &s->ring[k];
            uint32_t m = 0;
            b->min = INT64_MAX;
            for (uint32_t i = 0; i < b->n; i++)
                if (entry_current(s, b->v[i])) {
                    if (b->v[i].moment < b->min) b->min = b->v[i].moment;
                    b->v[m++] = b->v[i];
                }
            b->n = m;
            s->n_entries += m;
            if (!m) {
                s->ring_bits[w] &= ~(1ULL << (k % 64));
                free(b->v);
                b->v = NULL;
                b->cap = 0;
            }
        }
    size_t m = 0;
    for (size_t i = 0; i < s->n_far; i++)
        if (entry_current(s, s->far[i])) s->far[m++] = s->far[i];
    s->n_far = m;
    s->n_entries += m;
}

/* Removes every entry of a slot now (its slot may be reused). */
static void due_forget_slot(segments *s, int slot)
{
    if (!s->ring) return;
    for (uint32_t w = 0; w < DUE_RING / 64; w++)
        for (uint64_t bits = s->ring_bits[w]; bits; bits &= bits - 1) {
            uint32_t k = w * 64 + (uint32_t)__builtin_ctzll(bits);
            struct due_bucket *b = &s->ring[k];
            uint32_t m = 0;
            b->min = INT64_MAX;
            for (uint32_t i = 0; i < b->n; i++)
                if (b->v[i].slot != slot) {
                    if (b->v[i].moment < b->min) b->min = b->v[i].moment;
                    b->v[m++] = b->v[i];
                }
            s->n_entries -= b->n - m;
            b->n = m;
            if (!m) s->ring_bits[w] &= ~(1ULL << (k % 64));   /* an empty bucket is not "first" */
        }
    size_t m = 0;
    for (size_t i = 0; i < s->n_far; i++)
        if (s->far[i].slot != slot) s->far[m++] = s->far[i];
    s->n_entries -= s->n_far - m;
    s->n_far = m;
}

static void ring_free(segments *s)
{
    if (s->ring)
        for (uint32_t k = 0; k < DUE_RING; k++) free(s->ring[k].v);
    free(s->ring);
    free(s->ring_bits);
    free(s->far);
    free(s->run);
}

/* Sets (moment INT64_MAX: clears) the person's next re-check of a timed slot. */
static void schedule(segments *s, int slot, person_id p, int64_t moment)
{
    segment *g = &s->v[slot];
    if (!g->timed) return;
    if (p >= g->due_cap) {
        if (moment == INT64_MAX) return;
        uint32_t cap = g->due_cap ? g->due_cap : 1024;
        while (cap <= p) cap *= 2;
        g->due = xrealloc(g->due, cap * sizeof *g->due);
        for (uint32_t i = g->due_cap; i < cap; i++) g->due[i] = INT64_MAX;
        g->due_cap = cap;
    }
    int64_t had = g->due[p];
    if (had == moment) return;
    g->n_due += (moment != INT64_MAX) - (had != INT64_MAX);
    g->due[p] = moment;
    if (moment != INT64_MAX) due_add(s, (due_entry){ moment, p, slot });
}


/* Forgets every scheduled moment of a slot (its heap entries go stale). */
static void unschedule_all(segment *g)
{
    for (uint32_t p = 0; p < g->due_cap; p++) g->due[p] = INT64_MAX;
    g->n_due = 0;
}

/* Schedules everyone for a slot (after its definition changed or a recomputation):
 * none for a filter that time alone cannot change. */
static void schedule_all(segments *s, const engine *e, int slot, int64_t now)
{
    segment *g = &s->v[slot];
    unschedule_all(g);
    if (!g->timed) return;
    /* everyone's moments from one scan of the columns and logs the filter reads */
    person_id limit = engine_person_limit(e);
    int64_t *moments = xmalloc(((size_t)limit + 1) * sizeof *moments);
    filter_resolver r = segments_resolver(s);
    filter_env env = { .e = e, .now_ms = now, .resolver = &r };
    filter_next_changes(g->filter, &env, moments);
    for (person_id p = 0; p < limit; p++)
        if (moments[p] != INT64_MAX) schedule(s, slot, p, moments[p]);
    free(moments);
    due_trim(s);
}

int64_t segments_next_due(const segments *s)
{
    /* the earliest entry of the first bucket (stale ones only make the caller wake early) */
    int64_t id = first_bucket(s);
    int64_t next = s->n_run ? s->run[0].moment : INT64_MAX;
    if (id != INT64_MAX) {
        const struct due_bucket *b = &s->ring[id & (DUE_RING - 1)];
        if (b->n && b->min < next) next = b->min;
    }
    for (size_t i = 0; i < s->n_far && id == INT64_MAX; i++)
        if (s->far[i].moment < next) next = s->far[i].moment;
    return next;
}

uint64_t segments_scheduled(const segments *s)
{
    uint64_t n = 0;
    for (int i = 0; i < s->n; i++) n += s->v[i].live ? s->v[i].n_due : 0;
    return n;
}

/* ---- what a filter reads ---- */

static void add_unique(int **v, size_t *n, int x)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == x) return;
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = x;
}

static void collect_reads(const segments *s, const filter_node *n, segment *g)
{
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT:
        for (uint32_t i = 0; i < n->n_children; i++) collect_reads(s, n->children[i], g);
        return;
    case FILTER_ATTRIBUTE:
        add_unique(&g->attrs, &g->n_attrs, n->index);
        return;
    case FILTER_BUCKET:
        add_unique(&g->attrs, &g->n_attrs, ATTR_USER_ID);
        return;
    case FILTER_EVENT:
        add_unique(&g->types, &g->n_types, n->index);
        return;
    case FILTER_SEGMENT: {
        int slot = segments_find(s, n->name);
        if (slot < 0) return;   /* bind refused it already */
        add_unique(&g->all_segs, &g->n_all_segs, slot);
        if (n->op != FOP_IN_CACHED) add_unique(&g->segs, &g->n_segs, slot);
        return;
    }
    default:
        return;
    }
}

/* ---- order ---- */

/* Depth-first topological order from slot; state 0 new, 1 on the path, 2 done.
 * Returns -1 and the slot that closes a cycle in *cycle_at. */
static int visit(const segments *s, int slot, uint8_t *state, int *order, int *n_order, int *cycle_at)
{
    if (state[slot] == 2) return 0;
    if (state[slot] == 1) {
        *cycle_at = slot;
        return -1;
    }
    state[slot] = 1;
    const segment *g = &s->v[slot];
    for (size_t i = 0; i < g->n_all_segs; i++)
        if (visit(s, g->all_segs[i], state, order, n_order, cycle_at)) return -1;
    state[slot] = 2;
    order[(*n_order)++] = slot;
    return 0;
}

/* Rebuilds s->order; returns 0, or -1 with *cycle_at a slot on a cycle (order kept). */
static void memo_fit(segments *s);

/* The blank answer of a segment a filter names (computed earlier in the order). */
static int blank_member(void *ctx, const char *id, int cached)
{
    const segments *s = ctx;
    int slot = segments_find(s, id);
    return !cached && slot >= 0 && s->v[slot].blank;   /* nobody new is in a snapshot */
}

/* One CSR index: for keys 0..n_keys-1, the order positions whose list (got by `list`)
 * holds the key. */
static void build_index(const segments *s, int n_keys, const int *(*list)(const segment *, size_t *), int **off_out,
                        int **pos_out)
{
    int *off = xcalloc((size_t)n_keys + 2, sizeof *off);
    for (int k = 0; k < s->n_order; k++) {
        size_t n;
        const int *v = list(&s->v[s->order[k]], &n);
        for (size_t i = 0; i < n; i++) off[v[i] + 1]++;
    }
    for (int i = 0; i < n_keys; i++) off[i + 1] += off[i];
    int *pos = xmalloc(((size_t)off[n_keys] + 1) * sizeof *pos);
    int *fill = xmalloc(((size_t)n_keys + 1) * sizeof *fill);
    memcpy(fill, off, (size_t)n_keys * sizeof *fill);
    for (int k = 0; k < s->n_order; k++) {   /* ascending positions within each key */
        size_t n;
        const int *v = list(&s->v[s->order[k]], &n);
        for (size_t i = 0; i < n; i++) pos[fill[v[i]]++] = k;
    }
    free(fill);
    free(*off_out);
    free(*pos_out);
    *off_out = off;
    *pos_out = pos;
}

static const int *list_attrs(const segment *g, size_t *n) { *n = g->n_attrs; return g->attrs; }
static const int *list_types(const segment *g, size_t *n) { *n = g->n_types; return g->types; }
static const int *list_segs(const segment *g, size_t *n) { *n = g->n_segs; return g->segs; }

static int max_of(const segments *s, const int *(*list)(const segment *, size_t *))
{
    int m = -1;
    for (int k = 0; k < s->n_order; k++) {
        size_t n;
        const int *v = list(&s->v[s->order[k]], &n);
        for (size_t i = 0; i < n; i++)
            if (v[i] > m) m = v[i];
    }
    return m + 1;
}

/* Rebuilds the dependency index from the order and each segment's reads. */
static void build_readers(segments *s)
{
    s->n_attr_index = max_of(s, list_attrs);
    s->n_type_index = max_of(s, list_types);
    build_index(s, s->n_attr_index, list_attrs, &s->attr_off, &s->attr_pos);
    build_index(s, s->n_type_index, list_types, &s->type_off, &s->type_pos);
    build_index(s, s->n, list_segs, &s->seg_off, &s->seg_pos);
    free(s->pos_of);
    s->pos_of = xmalloc(((size_t)s->n + 1) * sizeof *s->pos_of);
    for (int k = 0; k < s->n_order; k++) s->pos_of[s->order[k]] = k;
    memo_fit(s);
    s->blanks_stale = 1;           /* computed when a new person next needs them */
}

/* What a blank person matches, in order (a segment condition asks the earlier answer). */
static void compute_blanks(segments *s, const engine *e)
{
    free(s->blank_pos);
    s->blank_pos = xcalloc(((size_t)s->n_order + 63) / 64 + 1, sizeof *s->blank_pos);
    filter_env env = { .e = e, .now_ms = 0, .resolver = NULL };
    for (int k = 0; k < s->n_order; k++) {
        segment *g = &s->v[s->order[k]];
        g->blank = filter_match_blank(g->filter, &env, blank_member, s);
        if (g->blank) s->blank_pos[k / 64] |= 1ULL << (k % 64);
    }
    s->blanks_stale = 0;
}

static int rebuild_order(segments *s, int *cycle_at)
{
    uint8_t *state = xcalloc((size_t)s->n + 1, 1);
    int *order = xmalloc(((size_t)s->n + 1) * sizeof *order);
    int n = 0, rc = 0;
    for (int i = 0; i < s->n && rc == 0; i++)
        if (s->v[i].live) rc = visit(s, i, state, order, &n, cycle_at);
    free(state);
    if (rc) {
        free(order);
        return -1;
    }
    free(s->order);
    s->order = order;
    s->n_order = n;
    build_readers(s);
    return 0;
}

/* ---- definitions ---- */

static int name_length(const char *name)
{
    /* characters, not bytes: count UTF-8 lead bytes */
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}

static int check_name(const segments *s, const char *name, int self, segd_error *err)
{
    if (!name || name_length(name) < 1 || name_length(name) > SEGMENT_NAME_MAX) {
        snprintf(err->field, sizeof err->field, "name");
        return segd_error_set(err, 422, "invalid_name", "a segment's name is 1 to %d characters", SEGMENT_NAME_MAX);
    }
    for (int i = 0; i < s->n; i++)
        if (i != self && s->v[i].live && strcmp(s->v[i].name, name) == 0) {
            snprintf(err->field, sizeof err->field, "name");
            return segd_error_set(err, 409, "name_taken", "another segment is called \"%.100s\"; choose another name", name);
        }
    return 0;
}

static char **copy_list(const char *const *v, size_t n)
{
    if (!n) return NULL;
    char **out = xmalloc(n * sizeof *out);
    for (size_t i = 0; i < n; i++) out[i] = xstrdup(v[i]);
    return out;
}

/* Fills g's definition from in (the filter already bound: taken over). */
static void definition_set(segment *g, const segment_input *in, filter_node *bound, int64_t now)
{
    g->name = xstrdup(in->name);
    g->description = xstrdup(in->description ? in->description : "");
    g->hidden_from = copy_list(in->hidden_from, in->n_hidden_from);
    g->n_hidden_from = in->n_hidden_from;
    g->default_for = copy_list(in->default_for, in->n_default_for);
    g->n_default_for = in->n_default_for;
    g->filter = bound;
    g->refresh_ms = in->refresh_ms > 0 ? in->refresh_ms : SEGMENT_DEFAULT_REFRESH_MS;
    g->updated_at = now;
}

/* A copy of the input's filter bound against the engine and this set, or NULL with err. */
static filter_node *bind_copy(segments *s, const engine *e, const segment_input *in, segd_error *err)
{
    if (!in->filter) {
        snprintf(err->field, sizeof err->field, "filter");
        segd_error_set(err, 422, "invalid_filter", "a segment needs a filter");
        return NULL;
    }
    filter_node *f = filter_clone(in->filter);
    filter_resolver r = segments_resolver(s);
    if (filter_bind(f, e, &r, err) != 0) {
        filter_free(f);
        return NULL;
    }
    return f;
}

/* The new members of slot by a full evaluation, as a bitmap. */
/* The people a bound filter matches now, as a bitmap; NULL if it cannot be evaluated. */
static roaring_bitmap_t *matching(segments *s, const engine *e, const filter_node *f, int64_t now)
{
    filter_resolver r = segments_resolver(s);
    filter_env env = { .e = e, .now_ms = now, .resolver = &r };
    size_t words = filter_words(e);
    uint64_t *bits = xcalloc(words ? words : 1, sizeof *bits);
    roaring_bitmap_t *m = NULL;
    if (filter_eval(f, &env, bits) == 0) {
        m = roaring_bitmap_create();
        if (!m) abort();
        for (size_t w = 0; w < words; w++)
            for (uint64_t b = bits[w]; b; b &= b - 1) roaring_bitmap_add(m, (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b)));
        roaring_bitmap_run_optimize(m);
    }
    free(bits);
    return m;
}

static roaring_bitmap_t *evaluate_all(segments *s, const engine *e, int slot, int64_t now)
{
    roaring_bitmap_t *m = matching(s, e, s->v[slot].filter, now);
    if (!m && !(m = roaring_bitmap_create())) abort();
    return m;
}

typedef struct diff_ctx {
    seg_transitions *out;
    int slot;
    seg_direction dir;
    seg_cause cause;
    int64_t at;
    int silent;
} diff_ctx;

static bool push_each(uint32_t p, void *ctx)
{
    diff_ctx *d = ctx;
    push_transition(d->out, d->slot, p, d->dir, d->cause, d->at, d->silent);
    return true;
}

/* Replaces slot's members by m, appending the differences to out (when out; marked
 * silent when asked). */
static void replace_members(segments *s, int slot, roaring_bitmap_t *m, seg_cause cause, int64_t now, seg_transitions *out,
                            int silent)
{
    segment *g = &s->v[slot];
    roaring_bitmap_t *entered = roaring_bitmap_andnot(m, g->members);
    roaring_bitmap_t *exited = roaring_bitmap_andnot(g->members, m);
    if (out) {
        diff_ctx in = { out, slot, SEG_ENTERED, cause, now, silent }, gone = { out, slot, SEG_EXITED, cause, now, silent };
        roaring_iterate(exited, push_each, &gone);
        roaring_iterate(entered, push_each, &in);
    }
    pm_set_all(s, slot, exited, 0);
    pm_set_all(s, slot, entered, 1);
    roaring_bitmap_free(entered);
    roaring_bitmap_free(exited);
    roaring_bitmap_free(g->members);
    g->members = m;
}

static void new_id(const segments *s, char *id)
{
    do {
        uint64_t r;
        randombytes_buf(&r, sizeof r);
        memcpy(id, "seg_", 4);
        base32_format(r, 12, id + 4);
    } while (segments_find(s, id) >= 0);
}

static int reaches(const segments *s, int from, int to, uint8_t *seen);

/* A free slot (a deleted one, or a new one at the end), zeroed. */
static int take_slot(segments *s)
{
    for (int i = 0; i < s->n; i++)
        if (!s->v[i].live) {
            memset(&s->v[i], 0, sizeof s->v[i]);
            return i;
        }
    s->v = xgrow(s->v, sizeof *s->v, &s->cap, (size_t)s->n + 1, 16);
    memset(&s->v[s->n], 0, sizeof s->v[s->n]);
    return s->n++;
}

/* Makes a taken slot live with its definition (filter bound, taken over) and an empty
 * member set, and puts it in the order. */
/* A hash of a bound filter as written (its canonical JSON). */
static uint64_t filter_shape(const filter_node *f)
{
    char *json = filter_print_json(f);
    uint64_t h = 1469598103934665603ULL;    /* FNV-1a 64 */
    for (const char *c = json; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    free(json);
    return h;
}

/* Sizes the memo for the number of segments (after the order changed). */
static void memo_fit(segments *s)
{
    size_t cap = 64;
    while (cap < (size_t)s->n_order * 2) cap *= 2;
    if (s->memo && cap == s->memo_mask + 1) return;
    free(s->memo);
    s->memo = xcalloc(cap, sizeof *s->memo);
    s->memo_mask = cap - 1;
    s->memo_gen = 0;
}

/* The memo entry of a shape in this call (found, or claimed with gen set and is -1). */
static struct shape_memo *memo_at(segments *s, uint64_t shape)
{
    for (size_t k = shape & s->memo_mask;; k = (k + 1) & s->memo_mask) {
        struct shape_memo *m = &s->memo[k];
        if (m->gen != s->memo_gen) {
            *m = (struct shape_memo){ shape, s->memo_gen, -1, INT64_MAX };
            return m;
        }
        if (m->shape == shape) return m;
    }
}

static void slot_open(segments *s, int slot, const char *id, const segment_input *in, filter_node *bound,
                      int64_t created_at, int64_t updated_at)
{
    segment *g = &s->v[slot];
    snprintf(g->id, sizeof g->id, "%s", id);
    definition_set(g, in, bound, updated_at);
    g->created_by = xstrdup(in->created_by ? in->created_by : "");
    g->created_at = created_at;
    g->members = roaring_bitmap_create();
    if (!g->members) abort();
    g->live = 1;
    index_ids(s);
    g->shape = filter_shape(g->filter);
    g->timed = filter_time_relative(g->filter);
    collect_reads(s, g->filter, g);
    int cycle_at;
    rebuild_order(s, &cycle_at);   /* a new slot is named by nobody yet: no cycle */
}

int segments_create(segments *s, const engine *e, const segment_input *in, int64_t now, int backfill,
                    char *id_out, seg_transitions *out, segd_error *err)
{
    int rc = check_name(s, in->name, -1, err);
    if (rc) return rc;
    filter_node *bound = bind_copy(s, e, in, err);
    if (!bound) return err->status ? segd_status_rc(err->status) : SEGD_EINVAL;
    char id[SEGMENT_ID_LEN + 1];
    new_id(s, id);
    int slot = take_slot(s);
    slot_open(s, slot, id, in, bound, now, now);
    replace_members(s, slot, evaluate_all(s, e, slot, now), SEG_CAUSE_DEFINITION, now, out, !backfill);
    schedule_all(s, e, slot, now);
    strcpy(id_out, s->v[slot].id);
    return slot;
}

int segments_restore(segments *s, const engine *e, const char *id, const segment_input *in, int64_t created_at,
                     int64_t updated_at, const uint32_t *members, size_t n_members, int64_t cached_at,
                     const void *snapshot, size_t snapshot_len, segd_error *err)
{
    if (!id || strlen(id) != SEGMENT_ID_LEN || segments_find(s, id) >= 0)
        return segd_error_set(err, 409, "segment_exists", "segment \"%.60s\" is restored twice or its id is malformed",
                              id ? id : "");
    roaring_bitmap_t *snap = NULL;
    if (snapshot) {
        snap = roaring_bitmap_portable_deserialize_safe(snapshot, snapshot_len);
        if (!snap) return segd_error_set(err, 500, "snapshot_unreadable", "the stored snapshot of segment %s is damaged", id);
    }
    filter_node *bound = bind_copy(s, e, in, err);
    if (!bound) {
        if (snap) roaring_bitmap_free(snap);
        return err->status ? segd_status_rc(err->status) : SEGD_EINVAL;
    }
    int slot = take_slot(s);
    slot_open(s, slot, id, in, bound, created_at, updated_at);
    segment *g = &s->v[slot];
    person_id limit = engine_person_limit(e);
    for (size_t i = 0; i < n_members; i++)
        if (members[i] < limit && engine_person_exists(e, members[i])) roaring_bitmap_add(g->members, members[i]);
    pm_fit(s, 0);                  /* the stride covers the new slot */
    pm_set_all(s, slot, g->members, 1);
    roaring_bitmap_run_optimize(g->members);
    g->snapshot = snap;
    g->cached_at = cached_at;
    return slot;
}

void *segments_snapshot_serialize(const segments *s, int slot, size_t *len)
{
    if (slot < 0 || slot >= s->n || !s->v[slot].live || !s->v[slot].snapshot) return NULL;
    const roaring_bitmap_t *m = s->v[slot].snapshot;
    size_t n = roaring_bitmap_portable_size_in_bytes(m);
    char *buf = xmalloc(n ? n : 1);
    *len = roaring_bitmap_portable_serialize(m, buf);
    return buf;
}

void *segments_members_serialize(const segments *s, int slot, size_t *len)
{
    if (slot < 0 || slot >= s->n || !s->v[slot].live) return NULL;
    const roaring_bitmap_t *m = s->v[slot].members;
    size_t n = roaring_bitmap_portable_size_in_bytes(m);
    char *buf = xmalloc(n ? n : 1);
    *len = roaring_bitmap_portable_serialize(m, buf);
    return buf;
}

uint32_t *segments_members_parse(const void *data, size_t len, size_t *n)
{
    roaring_bitmap_t *m = roaring_bitmap_portable_deserialize_safe(data, len);
    if (!m) return NULL;
    uint64_t count = roaring_bitmap_get_cardinality(m);
    uint32_t *v = xmalloc((count ? count : 1) * sizeof *v);
    roaring_bitmap_to_uint32_array(m, v);
    roaring_bitmap_free(m);
    *n = (size_t)count;
    return v;
}

int segments_forget_person(segments *s, person_id p, int *slots_out)
{
    int n = 0;
    for (int i = 0; i < s->n; i++) {
        segment *g = &s->v[i];
        if (!g->live || !g->snapshot || !roaring_bitmap_contains(g->snapshot, p)) continue;
        roaring_bitmap_remove(g->snapshot, p);
        slots_out[n++] = i;
    }
    return n;
}

typedef struct sample_ctx {
    person_id *v;
    size_t n, max;
} sample_ctx;

static bool take_sample(uint32_t p, void *ctx)
{
    sample_ctx *c = ctx;
    if (c->n >= c->max) return false;
    c->v[c->n++] = p;
    return true;
}

int segments_preview(segments *s, const engine *e, int slot, const filter_node *filter, int64_t now,
                     uint64_t *n_enter, uint64_t *n_exit, person_id *enter, size_t *n_enter_sample,
                     person_id *exit, size_t *n_exit_sample, size_t sample, segd_error *err)
{
    if (slot < 0 || slot >= s->n || !s->v[slot].live)
        return segd_error_set(err, 404, "segment_not_found", "no such segment");
    segment_input in = { .filter = filter };
    filter_node *bound = bind_copy(s, e, &in, err);
    if (!bound) return err->status ? segd_status_rc(err->status) : SEGD_EINVAL;
    /* the new filter may not name this segment or one that reads it (a cycle) */
    segment probe = { 0 };
    collect_reads(s, bound, &probe);
    int cycle = -1;
    for (size_t i = 0; i < probe.n_all_segs && cycle < 0; i++) {
        uint8_t *seen = xcalloc((size_t)s->n, 1);
        if (reaches(s, probe.all_segs[i], slot, seen)) cycle = probe.all_segs[i];
        free(seen);
    }
    free(probe.attrs);
    free(probe.types);
    free(probe.segs);
    free(probe.all_segs);
    if (cycle >= 0) {
        filter_free(bound);
        snprintf(err->field, sizeof err->field, "filter");
        return segd_error_set(err, 422, "segment_cycle",
                              "the filter names segment \"%.100s\", which already depends on this one: segments cannot name each other in a cycle",
                              s->v[cycle].name);
    }
    roaring_bitmap_t *m = matching(s, e, bound, now);
    filter_free(bound);
    if (!m) return segd_error_set(err, 500, "evaluation_failed", "the filter could not be evaluated");
    roaring_bitmap_t *in_new = roaring_bitmap_andnot(m, s->v[slot].members);
    roaring_bitmap_t *gone = roaring_bitmap_andnot(s->v[slot].members, m);
    *n_enter = roaring_bitmap_get_cardinality(in_new);
    *n_exit = roaring_bitmap_get_cardinality(gone);
    sample_ctx a = { enter, 0, sample }, b = { exit, 0, sample };
    roaring_iterate(in_new, take_sample, &a);
    roaring_iterate(gone, take_sample, &b);
    *n_enter_sample = a.n;
    *n_exit_sample = b.n;
    roaring_bitmap_free(in_new);
    roaring_bitmap_free(gone);
    roaring_bitmap_free(m);
    return 0;
}

/* 1 if slot `from` names `to`, directly or through other segments. */
static int reaches(const segments *s, int from, int to, uint8_t *seen)
{
    if (from == to) return 1;
    if (seen[from]) return 0;
    seen[from] = 1;
    for (size_t i = 0; i < s->v[from].n_all_segs; i++)
        if (reaches(s, s->v[from].all_segs[i], to, seen)) return 1;
    return 0;
}

/* What a slot reads, saved while a new definition is tried. */
typedef struct reads {
    filter_node *filter;
    int *attrs, *types, *segs, *all_segs;
    size_t n_attrs, n_types, n_segs, n_all_segs;
} reads;

static reads reads_take(segment *g)
{
    reads r = { g->filter, g->attrs, g->types, g->segs, g->all_segs, g->n_attrs, g->n_types, g->n_segs, g->n_all_segs };
    g->filter = NULL;
    g->attrs = g->types = g->segs = g->all_segs = NULL;
    g->n_attrs = g->n_types = g->n_segs = g->n_all_segs = 0;
    return r;
}

static void reads_put(segment *g, reads r)
{
    g->filter = r.filter;
    g->attrs = r.attrs;
    g->types = r.types;
    g->segs = r.segs;
    g->all_segs = r.all_segs;
    g->n_attrs = r.n_attrs;
    g->n_types = r.n_types;
    g->n_segs = r.n_segs;
    g->n_all_segs = r.n_all_segs;
}

static void reads_free(reads r)
{
    filter_free(r.filter);
    free(r.attrs);
    free(r.types);
    free(r.segs);
    free(r.all_segs);
}

/* Re-evaluates, in order, every segment that names `slot` with in / not_in, directly or
 * through others, after slot's members were replaced by a new definition: their own
 * definitions did not change, but what they read did. */
static void recompute_dependents(segments *s, const engine *e, int slot, int64_t now, seg_transitions *out, int silent)
{
    uint8_t *changed = xcalloc((size_t)s->n, 1);
    changed[slot] = 1;
    for (int k = 0; k < s->n_order; k++) {
        int d = s->order[k];
        const segment *g = &s->v[d];
        int reads = 0;
        for (size_t i = 0; i < g->n_segs && !reads; i++) reads = changed[g->segs[i]];
        if (!reads) continue;
        replace_members(s, d, evaluate_all(s, e, d, now), SEG_CAUSE_DEFINITION, now, out, silent);
        schedule_all(s, e, d, now);
        changed[d] = 1;
    }
    free(changed);
}

int segments_update(segments *s, const engine *e, const char *id, const segment_input *in, int64_t now,
                    int backfill, seg_transitions *out, segd_error *err)
{
    int slot = segments_find(s, id);
    if (slot < 0) return segd_error_set(err, 404, "segment_not_found", "no segment has the id \"%.60s\"", id ? id : "");
    int rc = check_name(s, in->name, slot, err);
    if (rc) return rc;
    filter_node *bound = bind_copy(s, e, in, err);
    if (!bound) return err->status ? segd_status_rc(err->status) : SEGD_EINVAL;
    segment *g = &s->v[slot];
    reads old = reads_take(g);
    g->filter = bound;
    collect_reads(s, g->filter, g);
    int cycle_at;
    if (rebuild_order(s, &cycle_at) != 0) {
        /* name the segment this filter names that leads back here */
        for (size_t i = 0; i < g->n_all_segs; i++) {
            uint8_t *seen = xcalloc((size_t)s->n, 1);
            int back = reaches(s, g->all_segs[i], slot, seen);
            free(seen);
            if (back) {
                cycle_at = g->all_segs[i];
                break;
            }
        }
        reads_free(reads_take(g));
        reads_put(g, old);
        snprintf(err->field, sizeof err->field, "filter");
        return segd_error_set(err, 422, "segment_cycle",
                              "the filter names segment \"%.100s\", which already depends on this one: segments cannot name each other in a cycle",
                              s->v[cycle_at].name);
    }
    reads_free(old);
    reads now_reads = reads_take(g);
    char *created_by = g->created_by;
    g->created_by = NULL;
    definition_release(g);           /* name, description, lists */
    reads_put(g, now_reads);
    g->created_by = created_by;
    definition_set(g, in, g->filter, now);
    g->shape = filter_shape(g->filter);
    replace_members(s, slot, evaluate_all(s, e, slot, now), SEG_CAUSE_DEFINITION, now, out, !backfill);
    s->v[slot].timed = filter_time_relative(s->v[slot].filter);
    schedule_all(s, e, slot, now);
    recompute_dependents(s, e, slot, now, out, !backfill);
    return slot;
}

int segments_delete(segments *s, const char *id, segd_error *err)
{
    int slot = segments_find(s, id);
    if (slot < 0) return segd_error_set(err, 404, "segment_not_found", "no segment has the id \"%.60s\"", id ? id : "");
    int users = 0;
    for (int i = 0; i < s->n; i++) {
        if (!s->v[i].live || i == slot) continue;
        for (size_t k = 0; k < s->v[i].n_all_segs; k++)
            if (s->v[i].all_segs[k] == slot) {
                users++;
                break;
            }
    }
    if (users)
        return segd_error_set(err, 409, "segment_in_use",
                              "%d other segment%s use%s this one in their filter; change or delete %s first", users,
                              users == 1 ? "" : "s", users == 1 ? "s" : "", users == 1 ? "it" : "them");
    pm_set_all(s, slot, s->v[slot].members, 0);   /* the slot may be reused */
    slot_release(&s->v[slot]);
    index_ids(s);
    due_forget_slot(s, slot);   /* the slot may be reused: its entries go now */
    int cycle_at;
    rebuild_order(s, &cycle_at);   /* removing a node cannot make a cycle */
    return 0;
}

/* 1 if a sorted-or-not small array holds x. */
static int holds(const int *v, size_t n, int x)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* Sets in todo the order positions of CSR key `key`. */
static void mark(uint64_t *todo, const int *off, const int *pos, int n_keys, int key)
{
    if (key < 0 || key >= n_keys) return;
    for (int i = off[key]; i < off[key + 1]; i++) todo[pos[i] / 64] |= 1ULL << (pos[i] % 64);
}

void segments_person_changed(segments *s, const engine *e, person_id p, const seg_change *what, int64_t now,
                             seg_cause cause, seg_transitions *out)
{
    if (s->n_order == 0) return;
    /* the segments to re-check, as order positions: those that read what changed, and
     * (as flips happen) those that read a segment that flipped; they come later in the
     * order, so one ascending pass sees them */
    size_t words = ((size_t)s->n_order + 63) / 64;
    uint64_t small[16];
    uint64_t *todo = words <= 16 ? small : xmalloc(words * sizeof *todo);
    int exists = engine_person_exists(e, p);
    if (what->created && s->blanks_stale) compute_blanks(s, e);
    memset(todo, 0, words * sizeof *todo);
    if (what->all || !exists) {
        memset(todo, 0xff, words * sizeof *todo);
        if (s->n_order % 64) todo[words - 1] = (1ULL << (s->n_order % 64)) - 1;
    } else {
        for (size_t i = 0; i < what->n_attrs; i++) mark(todo, s->attr_off, s->attr_pos, s->n_attr_index, what->attrs[i]);
        for (size_t i = 0; i < what->n_types; i++) mark(todo, s->type_off, s->type_pos, s->n_type_index, what->types[i]);
        if (what->created)
            for (size_t w = 0; w < words; w++) todo[w] |= s->blank_pos[w];
        for (size_t i = 0; i < what->n_slots; i++)
            if (what->slots[i] >= 0 && what->slots[i] < s->n && s->v[what->slots[i]].live) {
                int k = s->pos_of[what->slots[i]];
                todo[k / 64] |= 1ULL << (k % 64);
            }
    }
    filter_resolver r = segments_resolver(s);
    filter_cache_reset(s->cache);   /* the engine has changed since the last call */
    filter_env env = { .e = e, .now_ms = now, .resolver = &r, .cache = s->cache };
    if (++s->memo_gen == 0) {       /* wrapped: forget every entry */
        memset(s->memo, 0, (s->memo_mask + 1) * sizeof *s->memo);
        s->memo_gen = 1;
    }
    for (size_t w = 0; w < words; w++) {
        while (todo[w]) {
            int k = (int)(w * 64) + __builtin_ctzll(todo[w]);
            todo[w] &= todo[w] - 1;
            int slot = s->order[k];
            segment *g = &s->v[slot];
            int is;
            if (!exists) {
                is = 0;
                schedule(s, slot, p, INT64_MAX);
            } else {
                /* segments with the same filter get the same answer (and next moment) */
                struct shape_memo *m = memo_at(s, g->shape);
                if (m->is < 0) {          /* the same shape means the same timed-ness */
                    m->is = filter_match(g->filter, &env, p) == 1;
                    if (g->timed) m->moment = filter_next_change(g->filter, &env, p);
                }
                is = m->is;
                if (g->timed) schedule(s, slot, p, m->moment);
            }
            int was = pm_get(s, slot, p);
            /* a new person's answers differ from a blank person's where they read what
             * changed: the segments naming those must look again even without a flip */
            if (what->created && exists && is != g->blank && is == was)
                mark(todo, s->seg_off, s->seg_pos, s->n, slot);
            if (is == was) continue;
            if (is) roaring_bitmap_add(g->members, p);
            else roaring_bitmap_remove(g->members, p);
            pm_set(s, slot, p, is);
            mark(todo, s->seg_off, s->seg_pos, s->n, slot);   /* readers of this segment, later in order */
            push_transition(out, slot, p, is ? SEG_ENTERED : SEG_EXITED, cause, now, 0);
        }
    }
    if (todo != small) free(todo);
}

void segments_recompute_all(segments *s, const engine *e, int64_t now, seg_cause cause, seg_transitions *out)
{
    for (int k = 0; k < s->n_order; k++) {
        int slot = s->order[k];
        replace_members(s, slot, evaluate_all(s, e, slot, now), cause, now, out, 0);
        schedule_all(s, e, slot, now);
    }
}

size_t segments_run_due(segments *s, const engine *e, int64_t now, seg_transitions *out)
{
    size_t ran = 0;
    int64_t now_id = now >> DUE_SHIFT;
    for (;;) {
        int64_t id = first_bucket(s);
        if (id == INT64_MAX && s->n_far) {            /* only far entries: bring the ring to them */
            int64_t lo = INT64_MAX;
            for (size_t i = 0; i < s->n_far; i++)
                if ((s->far[i].moment >> DUE_SHIFT) < lo) lo = s->far[i].moment >> DUE_SHIFT;
            if (lo > now_id) break;
            advance(s, lo);
            continue;
        }
        if (id == INT64_MAX || id > now_id) break;
        /* take the bucket as a heap; what is scheduled into it meanwhile joins the heap */
        uint32_t k = (uint32_t)(id & (DUE_RING - 1));
        struct due_bucket *b = &s->ring[k];
        s->run_id = id;
        for (uint32_t i = 0; i < b->n; i++) run_push(s, b->v[i]);
        b->n = 0;
        s->ring_bits[k / 64] &= ~(1ULL << (k % 64));
        advance(s, id);
        while (s->n_run && s->run[0].moment <= now) {
            due_entry x = run_pop(s);
            s->n_entries--;
            segment *g = &s->v[x.slot];
            if (!entry_current(s, x)) continue;   /* stale */
            g->due[x.person] = INT64_MAX;
            g->n_due--;
            int slot = x.slot;
            seg_change what = { .slots = &slot, .n_slots = 1 };
            /* as of the moment itself: the flip is recorded when it happened, not when the
             * clock got round to it; the next moment is scheduled from there */
            segments_person_changed(s, e, x.person, &what, x.moment, SEG_CAUSE_CLOCK, out);
            ran++;
        }
        /* what is left of the bucket (after now) goes back to it */
        s->run_id = INT64_MIN;
        size_t left = s->n_run;
        s->n_run = 0;
        s->n_entries -= left;
        for (size_t i = 0; i < left; i++) due_add(s, s->run[i]);
        if (left) break;                           /* the rest is after now */
    }
    if (s->ring && now_id > s->base_id && first_bucket(s) > now_id) advance(s, now_id);
    due_trim(s);
    return ran;
}

void segments_snapshot(segments *s, int slot, int64_t now)
{
    if (slot < 0 || slot >= s->n || !s->v[slot].live) return;
    segment *g = &s->v[slot];
    if (g->snapshot) roaring_bitmap_free(g->snapshot);
    g->snapshot = roaring_bitmap_copy(g->members);
    if (!g->snapshot) abort();
    g->cached_at = now;
}

int segments_rebind(segments *s, const engine *e, segd_error *err)
{
    filter_resolver r = segments_resolver(s);
    for (int i = 0; i < s->n; i++) {
        segment *g = &s->v[i];
        if (!g->live) continue;
        if (filter_bind(g->filter, e, &r, err) != 0) {
            char why[sizeof err->message];
            snprintf(why, sizeof why, "%s", err->message);
            return segd_error_set(err, 409, "used_by_segment", "segment \"%.100s\" would no longer work: %s", g->name, why);
        }
        reads old = reads_take(g);
        g->filter = old.filter;
        old.filter = NULL;
        collect_reads(s, g->filter, g);
        reads_free(old);
    }
    for (int i = 0; i < s->n; i++)
        if (s->v[i].live) s->v[i].shape = filter_shape(s->v[i].filter);
    build_readers(s);
    return 0;
}

int64_t segments_next_refresh(const segments *s)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < s->n; i++)
        if (s->v[i].live && s->v[i].cached_at + s->v[i].refresh_ms < next) next = s->v[i].cached_at + s->v[i].refresh_ms;
    return next;
}

int segments_use_attribute(const segments *s, int attr, int *slot)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i].live && holds(s->v[i].attrs, s->v[i].n_attrs, attr)) {
            *slot = i;
            return 1;
        }
    return 0;
}

/* ---- invariants ---- */

static bool member_live(uint32_t p, void *ctx)
{
    const engine *e = ctx;
    return engine_person_exists(e, p) != 0;
}

typedef struct pm_check {
    const segments *s;
    int slot;
} pm_check;

static bool pm_agrees(uint32_t p, void *ctx)
{
    const pm_check *c = ctx;
    return pm_get(c->s, c->slot, p) == 1;
}

int segments_check(const segments *s, const engine *e)
{
    int live = 0;
    uint8_t *placed = xcalloc((size_t)s->n + 1, 1);
    int rc = -1;
    for (int k = 0; k < s->n_order; k++) {
        int slot = s->order[k];
        if (slot < 0 || slot >= s->n || !s->v[slot].live || placed[slot]) {
            fprintf(stderr, "segments_check: order entry %d (slot %d) is bad or repeated\n", k, slot);
            goto done;
        }
        for (size_t i = 0; i < s->v[slot].n_all_segs; i++)
            if (!placed[s->v[slot].all_segs[i]]) {
                fprintf(stderr, "segments_check: slot %d comes before slot %d it reads\n", slot, s->v[slot].all_segs[i]);
                goto done;
            }
        placed[slot] = 1;
    }
    for (int i = 0; i < s->n; i++) {
        const segment *g = &s->v[i];
        if (!g->live) continue;
        live++;
        uint64_t v;
        if (strncmp(g->id, "seg_", 4) != 0 || base32_parse(g->id + 4, 12, &v) != 0 || !placed[i]) {
            fprintf(stderr, "segments_check: slot %d: bad id \"%s\" or not in the order\n", i, g->id);
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (s->v[j].live && (strcmp(s->v[j].id, g->id) == 0 || strcmp(s->v[j].name, g->name) == 0)) {
                fprintf(stderr, "segments_check: slots %d and %d share an id or a name\n", j, i);
                goto done;
            }
        if (!g->filter || filter_check(g->filter) != 0) {
            fprintf(stderr, "segments_check: slot %d: bad filter\n", i);
            goto done;
        }
        segment again = { 0 };
        collect_reads(s, g->filter, &again);
        int same = again.n_attrs == g->n_attrs && again.n_types == g->n_types && again.n_segs == g->n_segs &&
                   again.n_all_segs == g->n_all_segs;
        for (size_t k = 0; same && k < again.n_attrs; k++) same = holds(g->attrs, g->n_attrs, again.attrs[k]);
        for (size_t k = 0; same && k < again.n_types; k++) same = holds(g->types, g->n_types, again.types[k]);
        for (size_t k = 0; same && k < again.n_all_segs; k++) same = holds(g->all_segs, g->n_all_segs, again.all_segs[k]);
        free(again.attrs);
        free(again.types);
        free(again.segs);
        free(again.all_segs);
        if (!same) {
            fprintf(stderr, "segments_check: slot %d: the dependency lists differ from the filter\n", i);
            goto done;
        }
        uint64_t in_pm = 0;
        for (person_id p = 0; p < s->pm_people; p++) in_pm += (uint64_t)pm_get(s, i, p);
        if (in_pm != roaring_bitmap_get_cardinality(g->members) || !roaring_iterate(g->members, pm_agrees, (void *)&(pm_check){ s, i })) {
            fprintf(stderr, "segments_check: slot %d: the person-major bits disagree with the members\n", i);
            goto done;
        }
        if (!roaring_iterate(g->members, member_live, (void *)e)) {
            fprintf(stderr, "segments_check: slot %d: a member is not a live person\n", i);
            goto done;
        }
    }
    for (int k = 0; k < s->n_order; k++) {
        const segment *g = &s->v[s->order[k]];
        if (s->pos_of[s->order[k]] != k) {
            fprintf(stderr, "segments_check: position of slot %d is wrong in the index\n", s->order[k]);
            goto done;
        }
        for (size_t i = 0; i < g->n_attrs; i++) {
            int found = 0;
            for (int j = s->attr_off[g->attrs[i]]; j < s->attr_off[g->attrs[i] + 1] && !found; j++) found = s->attr_pos[j] == k;
            if (!found) {
                fprintf(stderr, "segments_check: slot %d is missing from the readers of attribute %d\n", s->order[k], g->attrs[i]);
                goto done;
            }
        }
        for (size_t i = 0; i < g->n_types; i++) {
            int found = 0;
            for (int j = s->type_off[g->types[i]]; j < s->type_off[g->types[i] + 1] && !found; j++) found = s->type_pos[j] == k;
            if (!found) {
                fprintf(stderr, "segments_check: slot %d is missing from the readers of event type %d\n", s->order[k], g->types[i]);
                goto done;
            }
        }
    }
    if (live != s->n_order) {
        fprintf(stderr, "segments_check: %d live segments, %d in the order\n", live, s->n_order);
        goto done;
    }
    rc = 0;
done:
    free(placed);
    return rc;
}
