/* query_cli.c - `segd query 'TEXT'`: runs a filter in its text form on a running segd
 * (GET /api/people?filter=TEXT) and prints how many people match and the first rows
 * as a table, or the server's JSON with --json. A filter error is printed as the
 * server states it (line, column, what was expected), with exit status 1.
 */
#include "cli.h"
#include "../base/alloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
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
    if (!o.server) o.server = getenv("SEGD_SERVER");
    if (!o.server || !o.server[0]) o.server = "http://127.0.0.1:8080";
    if (!o.key) o.key = getenv("SEGD_API_KEY");
    if (!o.fields) o.fields = "user_id,email,name,last_seen";

    CURL *curl = curl_easy_init();
    if (!curl) {
        fprintf(stderr, "segd query: cannot start libcurl\n");
        return 1;
    }
    char *filter = curl_easy_escape(curl, o.text, 0);
    char *fields = curl_easy_escape(curl, o.fields, 0);
    char *sort = o.sort ? curl_easy_escape(curl, o.sort, 0) : NULL;
    size_t url_len = strlen(o.server) + strlen(filter) + strlen(fields) + (sort ? strlen(sort) : 0) + 128;
    char *url = xmalloc(url_len);
    snprintf(url, url_len, "%s%s/api/people?limit=%ld&fields=%s&filter=%s%s%s", o.server,
             o.server[strlen(o.server) - 1] == '/' ? "" : "", o.limit, fields, filter, sort ? "&sort=" : "", sort ? sort : "");
    if (o.server[strlen(o.server) - 1] == '/') {   /* no double slash */
        char *p = strstr(url, "//api/");
        if (p) memmove(p, p + 1, strlen(p));
    }
    curl_free(filter);
    curl_free(fields);
    curl_free(sort);

    struct curl_slist *headers = NULL;
    char *auth = NULL;
    if (o.key && o.key[0]) {
        size_t n = strlen(o.key) + 32;
        auth = xmalloc(n);
        snprintf(auth, n, "Authorization: Bearer %s", o.key);
        headers = curl_slist_append(headers, auth);
    }
    growbuf b = { 0 };
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli_curl_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    rc = 1;
    if (cc != CURLE_OK) {
        fprintf(stderr, "segd query: cannot reach %s: %s (is segd serve running? --server sets the address)\n",
                o.server, curl_easy_strerror(cc));
        goto done;
    }
    cJSON *res = b.data ? cJSON_Parse(b.data) : NULL;
    if (status != 200) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(res, "error");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        fprintf(stderr, "segd query: %s%s%s\n", cJSON_IsString(code) ? code->valuestring : "error",
                cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
        if (status == 401) fprintf(stderr, "segd query: pass the API key with --key or SEGD_API_KEY\n");
    } else if (o.json) {
        printf("%s\n", b.data);
        rc = 0;
    } else if (res) {
        print_table(res);
        rc = 0;
    }
    cJSON_Delete(res);
done:
    free(b.data);
    free(url);
    free(auth);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc;
}
