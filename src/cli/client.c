/* client.c - the one request helper of the subcommands that talk to a running segd
 * (query, segments): server and key defaults, one HTTP request with libcurl, the answer
 * as JSON, and the server's error sentence printed the same way everywhere.
 */
#include "cli.h"
#include "../base/alloc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_server_defaults(const char **server, const char **key)
{
    if (!*server) *server = getenv("SEGD_SERVER");
    if (!*server || !(*server)[0]) *server = "http://127.0.0.1:8080";
    if (!*key) *key = getenv("SEGD_API_KEY");
}

char *cli_escape(const char *s)
{
    CURL *curl = curl_easy_init();
    char *e = curl ? curl_easy_escape(curl, s, 0) : NULL;
    char *out = xstrdup(e ? e : "");
    curl_free(e);
    if (curl) curl_easy_cleanup(curl);
    return out;
}

int cli_request(const char *cmd, const char *server, const char *key, const char *method, const char *path,
                const char *body, long *status, growbuf *out)
{
    CURL *curl = curl_easy_init();
    if (!curl) {
        fprintf(stderr, "%s: cannot start libcurl\n", cmd);
        return -1;
    }
    size_t n = strlen(server);
    while (n && server[n - 1] == '/') n--;     /* no double slash */
    size_t url_len = n + strlen(path) + 1;
    char *url = xmalloc(url_len);
    snprintf(url, url_len, "%.*s%s", (int)n, server, path);
    struct curl_slist *headers = NULL;
    char *auth = NULL;
    if (key && key[0]) {
        size_t k = strlen(key) + 32;
        auth = xmalloc(k);
        snprintf(auth, k, "Authorization: Bearer %s", key);
        headers = curl_slist_append(headers, auth);
    }
    if (body) headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    else if (strcmp(method, "POST") == 0) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "segd-cli/" SEGD_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cli_curl_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
    CURLcode cc = curl_easy_perform(curl);
    *status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    int rc = 0;
    if (cc != CURLE_OK) {
        fprintf(stderr, "%s: cannot reach %s: %s (is segd serve running? --server sets the address)\n", cmd, server,
                curl_easy_strerror(cc));
        rc = -1;
    }
    free(url);
    free(auth);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return rc;
}

void cli_print_error(const char *cmd, long status, const growbuf *body)
{
    cJSON *res = body->data ? cJSON_Parse(body->data) : NULL;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(res, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    if (cJSON_IsString(code))
        fprintf(stderr, "%s: %s%s%s\n", cmd, code->valuestring, cJSON_IsString(msg) ? ": " : "",
                cJSON_IsString(msg) ? msg->valuestring : "");
    else
        fprintf(stderr, "%s: the server answered %ld\n", cmd, status);
    if (status == 401) fprintf(stderr, "%s: pass the API key with --key or SEGD_API_KEY\n", cmd);
    cJSON_Delete(res);
}
