/* query_cli.c - `segd query 'TEXT'`: runs a filter in its text form on a running segd
 * (GET /api/people?filter=TEXT) and prints how many people match and the first rows
 * as a table, or the server's JSON with --json. A filter error is printed as the
 * server states it (line, column, what was expected), with exit status 1.
 */
#include "cli.h"
#include "../base/alloc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct query_opts {
    const char *server;
    const char *key;
    const char *fields;
    const char *sort;
    long limit;
    int json;
    const char *text;
} query_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: segd query [--server URL] [--key KEY] [--limit N] [--fields a,b] [--sort attr:desc] [--json] 'FILTER'\n"
               "Runs FILTER (the text form, docs/FILTERS.md) on a running segd and prints the number of\n"
               "people who match and the first rows. Example:\n"
               "  segd query 'plan = \"pro\" and count(purchase) >= 3'\n\noptions:\n"
               "  --server URL   the segd to ask (default: $SEGD_SERVER, else http://127.0.0.1:8080)\n"
               "  --key KEY      API key, sent as Authorization: Bearer KEY (default: $SEGD_API_KEY)\n"
               "  --limit N      rows to print, 1 to 1000 (default 10)\n"
               "  --fields LIST  attributes to show, comma-separated (default: user_id,email,name,last_seen)\n"
               "  --sort LIST    order, such as last_seen:desc (default: last_seen:desc)\n"
               "  --json         print the server's JSON answer instead of a table\n");
}

static int parse_args(int argc, char **argv, query_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--json") == 0) { o->json = 1; continue; }
        if (strcmp(a, "--server") == 0) target = &o->server;
        else if (strcmp(a, "--key") == 0) target = &o->key;
        else if (strcmp(a, "--fields") == 0) target = &o->fields;
        else if (strcmp(a, "--sort") == 0) target = &o->sort;
        else if (strcmp(a, "--limit") == 0) {
            if (i + 1 >= argc) break;
            char *end;
            o->limit = strtol(argv[++i], &end, 10);
            if (*end || o->limit < 1 || o->limit > 1000) {
                fprintf(stderr, "segd query: --limit takes a whole number from 1 to 1000\n");
                return -1;
            }
            continue;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "segd query: unknown option %s (see segd query --help)\n", a);
            return -1;
        } else if (!o->text) {
            o->text = a;
            continue;
        } else {
            fprintf(stderr, "segd query: give the filter as one argument, in quotes\n");
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "segd query: %s needs a value\n", a);
            return -1;
        }
        *target = argv[++i];
    }
    if (!o->text) {
        usage(stderr);
        return -1;
    }
    return 0;
}

/* A cell's text for the table (strings as they are, others as JSON), cut to 40 chars. */
static void cell_text(const cJSON *v, char *buf, size_t cap)
{
    if (!v || cJSON_IsNull(v)) snprintf(buf, cap, "-");
    else if (cJSON_IsString(v)) snprintf(buf, cap, "%s", v->valuestring);
    else {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(buf, cap, "%s", s ? s : "?");
        free(s);
    }
    if (strlen(buf) > 40) strcpy(buf + 37, "...");
}

static void print_table(const cJSON *res)
{
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(res, "total");
    const cJSON *people = cJSON_GetObjectItemCaseSensitive(res, "people");
    printf("%.0f %s\n", cJSON_IsNumber(total) ? total->valuedouble : 0,
           cJSON_IsNumber(total) && total->valuedouble == 1 ? "person matches" : "people match");
    if (!cJSON_IsArray(people) || !people->child) return;
    int n_cols = cJSON_GetArraySize(people->child);
    size_t *width = xcalloc((size_t)n_cols, sizeof *width);
    char buf[64];
    int c = 0;
    for (const cJSON *k = people->child->child; k; k = k->next, c++) width[c] = strlen(k->string);
    for (const cJSON *row = people->child; row; row = row->next) {
        c = 0;
        for (const cJSON *v = row->child; v && c < n_cols; v = v->next, c++) {
            cell_text(v, buf, sizeof buf);
            if (strlen(buf) > width[c]) width[c] = strlen(buf);
        }
    }
    c = 0;
    for (const cJSON *k = people->child->child; k && c < n_cols; k = k->next, c++)
        printf("%-*s%s", (int)width[c], k->string, c + 1 < n_cols ? "  " : "\n");
    for (const cJSON *row = people->child; row; row = row->next) {
        c = 0;
        for (const cJSON *v = row->child; v && c < n_cols; v = v->next, c++) {
            cell_text(v, buf, sizeof buf);
            printf("%-*s%s", (int)width[c], buf, c + 1 < n_cols ? "  " : "\n");
        }
    }
    free(width);
}

int cli_query(int argc, char **argv)
{
    query_opts o = { .limit = 10 };
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc > 0 ? 0 : 2;
    cli_server_defaults(&o.server, &o.key);
    if (!o.fields) o.fields = "user_id,email,name,last_seen";
    char *filter = cli_escape(o.text), *fields = cli_escape(o.fields), *sort = o.sort ? cli_escape(o.sort) : NULL;
    size_t len = strlen(filter) + strlen(fields) + (sort ? strlen(sort) : 0) + 96;
    char *path = xmalloc(len);
    snprintf(path, len, "/api/people?limit=%ld&fields=%s&filter=%s%s%s", o.limit, fields, filter, sort ? "&sort=" : "",
             sort ? sort : "");
    free(filter);
    free(fields);
    free(sort);
    growbuf b = { 0 };
    long status = 0;
    rc = 1;
    if (cli_request("segd query", o.server, o.key, "GET", path, NULL, &status, &b) == 0) {
        cJSON *res = b.data ? cJSON_Parse(b.data) : NULL;
        if (status != 200) {
            cli_print_error("segd query", status, &b);
        } else if (o.json) {
            printf("%s\n", b.data);
            rc = 0;
        } else if (res) {
            print_table(res);
            rc = 0;
        }
        cJSON_Delete(res);
    }
    free(b.data);
    free(path);
    return rc;
}
