/* segments_cli.c - `segd segments list|show|create|delete|recalc` against a running
 * segd (docs/API.md, "Segments"): a table of segments with their sizes, one segment in
 * full, creating one from a name and a filter (text form or JSON), deleting one, and
 * taking its cached-results snapshot now. --json prints the server's answers as they
 * are. Errors are the server's sentences, exit status 1.
 */
#include "cli.h"
#include "../base/alloc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "segd segments"

typedef struct seg_opts {
    const char *server, *key;
    const char *description;
    const char *refresh;
    int backfill;
    int json;
    const char *args[3];           /* the action and its operands */
    int n_args;
} seg_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: segd segments [--server URL] [--key KEY] [--json] ACTION ...\n"
               "Manages the segments of a running segd. Actions:\n"
               "  list                          every segment with its size and cached size\n"
               "  show ID                       one segment in full\n"
               "  create NAME FILTER            a new segment; FILTER in the text form (docs/FILTERS.md)\n"
               "                                or as JSON, such as:\n"
               "      segd segments create 'High-Value Customer' 'count(purchase) >= 3 or sum(purchase.amount) >= 500'\n"
               "      options: --description TEXT, --refresh 30m (cached-results interval), --backfill\n"
               "               (record the people who match now as entered, in the log and the outbox)\n"
               "  delete ID                     deletes a segment (refused while other segments use it)\n"
               "  recalc ID                     takes the cached-results snapshot now\n\noptions:\n"
               "  --server URL   the segd to ask (default: $SEGD_SERVER, else http://127.0.0.1:8080)\n"
               "  --key KEY      API key, sent as Authorization: Bearer KEY (default: $SEGD_API_KEY)\n"
               "  --json         print the server's JSON answer\n");
}

static int parse_args(int argc, char **argv, seg_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--json") == 0) { o->json = 1; continue; }
        if (strcmp(a, "--backfill") == 0) { o->backfill = 1; continue; }
        if (strcmp(a, "--server") == 0) target = &o->server;
        else if (strcmp(a, "--key") == 0) target = &o->key;
        else if (strcmp(a, "--description") == 0) target = &o->description;
        else if (strcmp(a, "--refresh") == 0) target = &o->refresh;
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, CMD ": unknown option %s (see segd segments --help)\n", a);
            return -1;
        } else if (o->n_args < 3) {
            o->args[o->n_args++] = a;
            continue;
        } else {
            fprintf(stderr, CMD ": too many arguments; quote the name and the filter (see segd segments --help)\n");
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, CMD ": %s needs a value\n", a);
            return -1;
        }
        *target = argv[++i];
    }
    static const struct { const char *name; int operands; } actions[] = {
        {"list", 0}, {"show", 1}, {"create", 2}, {"delete", 1}, {"recalc", 1},
    };
    if (o->n_args == 0) {
        usage(stderr);
        return -1;
    }
    for (size_t k = 0; k < sizeof actions / sizeof actions[0]; k++)
        if (strcmp(o->args[0], actions[k].name) == 0) {
            if (o->n_args - 1 == actions[k].operands) return 0;
            fprintf(stderr, CMD " %s takes %d argument%s (see segd segments --help)\n", actions[k].name,
                    actions[k].operands, actions[k].operands == 1 ? "" : "s");
            return -1;
        }
    fprintf(stderr, CMD ": unknown action \"%s\"; use list, show, create, delete or recalc\n", o->args[0]);
    return -1;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "-";
}

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void print_list(const cJSON *res)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(res, "segments");
    int n = cJSON_GetArraySize(list);
    if (n == 0) {
        printf("no segments yet: segd segments create NAME FILTER makes one\n");
        return;
    }
    size_t wname = 4;
    const cJSON *g;
    cJSON_ArrayForEach(g, list) if (strlen(str(g, "name")) > wname) wname = strlen(str(g, "name"));
    if (wname > 40) wname = 40;
    printf("%-16s  %-*s  %10s  %10s  %s\n", "id", (int)wname, "name", "size", "cached", "filter");
    cJSON_ArrayForEach(g, list) {
        const cJSON *cached = cJSON_GetObjectItemCaseSensitive(g, "cached");
        printf("%-16s  %-*.*s  %10.0f  %10.0f  %s\n", str(g, "id"), (int)wname, (int)wname, str(g, "name"), num(g, "size"),
               num(cached, "size"), str(g, "filter_text"));
    }
}

static void print_one(const cJSON *g)
{
    const cJSON *cached = cJSON_GetObjectItemCaseSensitive(g, "cached");
    printf("id           %s\nname         %s\ndescription  %s\nfilter       %s\nsize         %.0f\n"
           "cached       %.0f (computed %s, refreshed every %s)\ncreated      %s\nupdated      %s\n",
           str(g, "id"), str(g, "name"), str(g, "description"), str(g, "filter_text"), num(g, "size"), num(cached, "size"),
           str(cached, "computed_at"), str(g, "refresh"), str(g, "created_at"), str(g, "updated_at"));
}

int cli_segments(int argc, char **argv)
{
    seg_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;
    cli_server_defaults(&o.server, &o.key);
    const char *action = o.args[0];
    const char *method = "GET";
    char path[256];
    char *body = NULL;
    char *id = o.n_args > 1 && strcmp(action, "create") != 0 ? cli_escape(o.args[1]) : NULL;
    if (strcmp(action, "list") == 0) {
        snprintf(path, sizeof path, "/api/segments");
    } else if (strcmp(action, "show") == 0) {
        snprintf(path, sizeof path, "/api/segments/%.200s", id);
    } else if (strcmp(action, "delete") == 0) {
        method = "DELETE";
        snprintf(path, sizeof path, "/api/segments/%.200s", id);
    } else if (strcmp(action, "recalc") == 0) {
        method = "POST";
        snprintf(path, sizeof path, "/api/segments/%.200s/recalculate", id);
    } else {                                          /* create */
        method = "POST";
        snprintf(path, sizeof path, "/api/segments");
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", o.args[1]);
        cJSON *json_filter = o.args[2][0] == '{' ? cJSON_Parse(o.args[2]) : NULL;
        if (json_filter) cJSON_AddItemToObject(b, "filter", json_filter);
        else cJSON_AddStringToObject(b, "filter", o.args[2]);
        if (o.description) cJSON_AddStringToObject(b, "description", o.description);
        if (o.refresh) cJSON_AddStringToObject(b, "refresh", o.refresh);
        if (o.backfill) cJSON_AddTrueToObject(b, "backfill");
        body = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
    }
    growbuf b = { 0 };
    long status = 0;
    rc = 1;
    if (cli_request(CMD, o.server, o.key, method, path, body, &status, &b) == 0) {
        cJSON *res = b.data ? cJSON_Parse(b.data) : NULL;
        if (status != 200 && status != 201) {
            cli_print_error(CMD, status, &b);
        } else if (o.json) {
            printf("%s\n", b.data ? b.data : "");
            rc = 0;
        } else if (res) {
            if (strcmp(action, "list") == 0) print_list(res);
            else if (strcmp(action, "delete") == 0) printf("deleted %s\n", o.args[1]);
            else print_one(res);
            rc = 0;
        }
        cJSON_Delete(res);
    }
    free(b.data);
    free(body);
    free(id);
    return rc;
}
