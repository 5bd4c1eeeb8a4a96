/* config.c - the option table of segd serve and its parser (see config.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_STRING, OPT_LONG, OPT_BOOL } opt_type;

typedef struct option_row {
    const char *name;        /* flag without dashes */
    const char *env;         /* environment variable, or NULL */
    opt_type type;
    const char *def;         /* default as text */
    size_t offset;
    size_t size;             /* for strings */
    long min, max;           /* for numbers */
    const char *help;
} option_row;

static const option_row OPTIONS[] = {
    {"listen", "SEGD_LISTEN", OPT_STRING, "127.0.0.1:8080", offsetof(segd_config, listen), sizeof(((segd_config *)0)->listen), 0, 0,
     "address and port to serve HTTP on (port 0 picks a free port; a non-loopback address needs SEGD_MASTER_KEY)"},
    {"data", "SEGD_DATA", OPT_STRING, "./data", offsetof(segd_config, data), sizeof(((segd_config *)0)->data), 0, 0,
     "data directory (SQLite store and its lock)"},
    {"max-body-bytes", "SEGD_MAX_BODY_BYTES", OPT_LONG, "512000", offsetof(segd_config, max_body_bytes), 0, 1024, 1L << 30,
     "largest request body, a /v1/batch included (Segment's limit: 500 KB)"},
    {"max-message-bytes", "SEGD_MAX_MESSAGE_BYTES", OPT_LONG, "32768", offsetof(segd_config, max_message_bytes), 0, 256, 1L << 30,
     "largest single Segment message (Segment's limit: 32 KB)"},
    {"max-import-bytes", "SEGD_MAX_IMPORT_BYTES", OPT_LONG, "67108864", offsetof(segd_config, max_import_bytes), 0, 1024, 1L << 32,
     "largest POST /api/import body (segd import --server sends files in smaller chunks)"},
    {"threads", "SEGD_THREADS", OPT_LONG, "4", offsetof(segd_config, threads), 0, 1, 256, "HTTP worker threads"},
    {"max-attributes", "SEGD_MAX_ATTRIBUTES", OPT_LONG, "1000", offsetof(segd_config, max_attributes), 0, 16, 100000,
     "most distinct person attributes"},
    {"max-event-types", "SEGD_MAX_EVENT_TYPES", OPT_LONG, "1000", offsetof(segd_config, max_event_types), 0, 1, 100000,
     "most distinct event types"},
    {"max-properties", "SEGD_MAX_PROPERTIES", OPT_LONG, "100", offsetof(segd_config, max_properties), 0, 1, 10000,
     "most distinct properties per event type"},
    {"connection-timeout", "SEGD_CONNECTION_TIMEOUT", OPT_LONG, "30", offsetof(segd_config, connection_timeout), 0, 1, 3600,
     "seconds an idle connection is kept open"},
    {"max-connections", "SEGD_MAX_CONNECTIONS", OPT_LONG, "1000", offsetof(segd_config, max_connections), 0, 4, 100000,
     "most open connections"},
    {"per-ip-connections", "SEGD_PER_IP_CONNECTIONS", OPT_LONG, "200", offsetof(segd_config, per_ip_connections), 0, 1, 100000,
     "most open connections from one client address"},
    {"test-clock", "SEGD_TEST_CLOCK", OPT_BOOL, "0", offsetof(segd_config, test_clock), 0, 0, 1,
     "enable PUT /api/_test/clock, which sets the clock that time-relative filters and segments read (for tests; never in production)"},
    {"demo-data", "SEGD_DEMO_DATA", OPT_BOOL, "0", offsetof(segd_config, demo_data), 0, 0, 1,
     "load a small generated demo data set when the store is empty"},
};
#define N_OPTIONS (sizeof OPTIONS / sizeof OPTIONS[0])

static int set_value(segd_config *cfg, const option_row *o, const char *value, const char *from)
{
    char *field = (char *)cfg + o->offset;
    if (o->type == OPT_STRING) {
        if (strlen(value) >= o->size) {
            fprintf(stderr, "segd: %s: value too long (at most %zu bytes)\n", from, o->size - 1);
            return -1;
        }
        strcpy(field, value);
    } else if (o->type == OPT_LONG) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *end || end == value || v < o->min || v > o->max) {
            fprintf(stderr, "segd: %s: expected a whole number from %ld to %ld, got \"%s\"\n", from, o->min, o->max, value);
            return -1;
        }
        *(long *)field = v;
    } else {
        if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0) *(int *)field = 1;
        else if (strcmp(value, "0") == 0 || strcmp(value, "false") == 0) *(int *)field = 0;
        else {
            fprintf(stderr, "segd: %s: expected true or false, got \"%s\"\n", from, value);
            return -1;
        }
    }
    return 0;
}

void config_print_help(FILE *out, int markdown)
{
    if (markdown) {
        fprintf(out, "| flag | environment | default | meaning |\n|---|---|---|---|\n");
        for (size_t i = 0; i < N_OPTIONS; i++)
            fprintf(out, "| `--%s` | `%s` | `%s` | %s |\n", OPTIONS[i].name, OPTIONS[i].env, OPTIONS[i].def,
                    OPTIONS[i].help);
        fprintf(out, "| | `SEGD_MASTER_KEY` | unset | when set, every /api request needs `Authorization: Bearer KEY` and every /v1 request KEY as the HTTP Basic user |\n");
        return;
    }
    fprintf(out, "usage: segd serve [options]\n\noptions (flag / environment variable, default):\n");
    for (size_t i = 0; i < N_OPTIONS; i++)
        fprintf(out, "  --%-20s %-26s %s\n  %-22s %s\n", OPTIONS[i].name, OPTIONS[i].env, OPTIONS[i].def, "",
                OPTIONS[i].help);
    fprintf(out, "  %-22s %-26s %s\n", "", "SEGD_MASTER_KEY",
            "API key required on /api (Bearer) and /v1 (Basic user) when set; never stored or logged");
}

int config_parse(segd_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (set_value(cfg, &OPTIONS[i], OPTIONS[i].def, "default") != 0) return -1;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *v = OPTIONS[i].env ? getenv(OPTIONS[i].env) : NULL;
        if (v && *v && set_value(cfg, &OPTIONS[i], v, OPTIONS[i].env) != 0) return -1;
    }
    const char *key = getenv("SEGD_MASTER_KEY");
    if (key && *key) {
        if (strlen(key) >= sizeof cfg->master_key) {
            fprintf(stderr, "segd: SEGD_MASTER_KEY is longer than %zu bytes\n", sizeof cfg->master_key - 1);
            return -1;
        }
        strcpy(cfg->master_key, key);
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            config_print_help(stdout, 0);
            return 1;
        }
        if (strcmp(arg, "--help-markdown") == 0) {
            config_print_help(stdout, 1);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "segd: unexpected argument \"%s\"; see segd serve --help\n", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const option_row *o = NULL;
        for (size_t i = 0; i < N_OPTIONS && !o; i++)
            if (strlen(OPTIONS[i].name) == nlen && strncmp(OPTIONS[i].name, name, nlen) == 0) o = &OPTIONS[i];
        if (!o) {
            fprintf(stderr, "segd: unknown option \"%s\"; see segd serve --help\n", arg);
            return -1;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && o->type == OPT_BOOL) value = "1";
        if (!value) {
            if (a + 1 >= argc) {
                fprintf(stderr, "segd: %s needs a value\n", arg);
                return -1;
            }
            value = argv[++a];
        }
        if (set_value(cfg, o, value, arg) != 0) return -1;
    }
    return 0;
}

void config_ingest(const segd_config *cfg, ingest_config *out)
{
    ingest_config_defaults(out);
    out->limits.max_attributes = (uint32_t)cfg->max_attributes;
    out->limits.max_event_types = (uint32_t)cfg->max_event_types;
    out->limits.max_properties = (uint32_t)cfg->max_properties;
    out->max_message_bytes = (size_t)cfg->max_message_bytes;
    out->test_clock = cfg->test_clock;
}
