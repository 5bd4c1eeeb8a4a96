/* config.h - segd serve's configuration: one table of {name, env var, flag, type,
 * default, help} drives flag parsing, environment variables, --help and the README's
 * table (`segd serve --help-markdown`). Flags win over environment variables, which
 * win over defaults. */
#ifndef SEGD_CONFIG_H
#define SEGD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ingest/ingest.h"

typedef struct segd_config {
    char listen[256];              /* ADDR:PORT */
    char data[1024];               /* data directory */
    long max_body_bytes;           /* /v1 and /api bodies */
    long max_message_bytes;        /* one Segment message */
    long max_import_bytes;         /* POST /api/import bodies */
    long threads;                  /* HTTP worker threads */
    long max_attributes;
    long max_event_types;
    long max_properties;
    long connection_timeout;       /* seconds an idle connection is kept */
    long max_connections;
    long per_ip_connections;
    int demo_data;                 /* load demo data into an empty store */
    int test_clock;                /* PUT /api/_test/clock sets the clock (tests only) */
    char master_key[512];          /* SEGD_MASTER_KEY, never logged or stored */
} segd_config;

/* Fills cfg from defaults, then the environment, then argv (argv[0] is the first
 * argument after "serve"). Returns 0, 1 when --help was printed, or -1 after printing
 * a usage error to stderr. */
int config_parse(segd_config *cfg, int argc, char **argv);

/* The ingest settings the configuration gives (limits, message size): what `segd
 * serve` and `segd import --data` use, so both accept the same data. */
void config_ingest(const segd_config *cfg, ingest_config *out);

/* Prints the option table as --help text (markdown = 0) or a markdown table. */
void config_print_help(FILE *out, int markdown);

#endif
