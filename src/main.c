/* main.c - wires segd together: parses the command line, opens the store, rebuilds
 * the engine (ingest), starts the HTTP server, and stops them in reverse order on
 * SIGINT or SIGTERM after in-flight requests have finished. */
#include "base/error.h"
#include "cli/cli.h"
#include "cli/demo.h"
#include "config.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "store/store.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "segd %s - real-time segmentation server for a people database\n\n"
            "usage:\n"
            "  segd serve [options]                 serve HTTP (see segd serve --help)\n"
            "  segd import (--data DIR | --server URL) [--key KEY] [--on-error=skip|stop] FILE...\n"
            "                                       import NDJSON (Segment messages) or CSV (people or events)\n"
            "  segd query [--server URL] [--key KEY] [--limit N] 'FILTER'\n"
            "                                       count and list the people a filter matches, such as\n"
            "                                       segd query 'plan = \"pro\" and count(purchase) >= 3'\n"
            "  segd segments [--server URL] [--key KEY] list | show ID | create NAME FILTER | delete ID | recalc ID\n"
            "                                       manage segments (see segd segments --help)\n"
            "  segd --help | --version\n\n"
            "environment: SEGD_LISTEN, SEGD_DATA, SEGD_MASTER_KEY, SEGD_API_KEY and the others of segd serve --help\n",
            SEGD_VERSION);
}

static int serve(int argc, char **argv)
{
    segd_config cfg;
    int rc = config_parse(&cfg, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (!cfg.master_key[0] && !http_listen_is_loopback(cfg.listen)) {
        fprintf(stderr, "segd: refusing to listen on %s without SEGD_MASTER_KEY: anyone who can reach it could read and "
                        "write every person; set SEGD_MASTER_KEY or listen on 127.0.0.1\n", cfg.listen);
        return 2;
    }

    /* Signals go to this thread's sigwait only; threads started below inherit the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    segd_error err;
    segd_error_clear(&err);
    int status = 1;
    http_server *srv = NULL;
    ingest *ing = NULL;
    store *st = store_open(cfg.data, &err);
    if (!st) goto fail;
    ingest_config icfg;
    config_ingest(&cfg, &icfg);
    ing = ingest_open(st, &icfg, &err);
    if (!ing) goto fail;
    /* serve /livez and /readyz (503) while the engine is rebuilt; announce when ready */
    char bound[300];
    srv = http_start(&cfg, ing, bound, &err);
    if (!srv) goto fail;
    fprintf(stderr, "segd: loading %s on http://%s\n", cfg.data, bound);
    if (ingest_wait_ready(ing, &err) != 0) goto fail;
    if (cfg.demo_data) {
        const engine *e = ingest_read_begin(ing);
        int empty = e && engine_person_count(e) == 0;
        if (e) ingest_read_end(ing);
        if (empty && demo_load(ing, &err) != 0) goto fail;
    }
    printf("listening on http://%s\n", bound);
    if (cfg.demo_data)
        printf("try: curl http://%s/api/people/user-0001   curl http://%s/api/schema\n"
               "     ./segd query --server http://%s 'count(purchase) >= 3 or sum(purchase.amount) >= 500'\n",
               bound, bound, bound);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "segd: %s received, finishing in-flight requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;
    goto done;
fail:
    fprintf(stderr, "segd: %s (%s)\n", err.message, err.code);
done:
    http_stop(srv);
    ingest_close(ing);
    store_close(st);
    return status;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "segd: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("segd %s\n", SEGD_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) return serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "import") == 0) return cli_import(argc - 2, argv + 2);
    if (strcmp(argv[1], "query") == 0) return cli_query(argc - 2, argv + 2);
    if (strcmp(argv[1], "segments") == 0) return cli_segments(argc - 2, argv + 2);
    fprintf(stderr, "segd: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
