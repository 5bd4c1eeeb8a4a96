/* http_load.c - the load client of `make bench`: sends /v1/batch bodies (one per line
 * of a file, from bench/gen batch-bodies) over C keep-alive connections from as many
 * threads, to a segd on loopback, and prints messages/s. Every response must be 200.
 *
 * usage: http_load HOST PORT BODIES_FILE CONNECTIONS MESSAGES_PER_BODY [KEY]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char **bodies;
static size_t n_bodies;
static size_t next_body;
static pthread_mutex_t next_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *host;
static int port;
static long failures;

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response; returns its status or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) return -1;
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    char *cl = strcasestr(buf, "Content-Length:");
    size_t body = cl ? (size_t)atol(cl + 15) : 0;
    size_t have = len - (size_t)(end + 4 - buf);
    while (have < body) {
        ssize_t r = read(fd, buf, cap - 1);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    return status;
}

static void *worker(void *arg)
{
    const char *auth = arg;
    int fd = connect_to();
    char head[512], resp[65536];
    for (;;) {
        pthread_mutex_lock(&next_lock);
        size_t i = next_body++;
        pthread_mutex_unlock(&next_lock);
        if (i >= n_bodies) break;
        size_t blen = strlen(bodies[i]);
        int hl = snprintf(head, sizeof head,
                          "POST /v1/batch HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
                          host, auth, blen);
        if (send_all(fd, head, (size_t)hl) || send_all(fd, bodies[i], blen) || read_response(fd, resp, sizeof resp) != 200) {
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
            close(fd);
            fd = connect_to();
        }
    }
    close(fd);
    return NULL;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: http_load HOST PORT BODIES_FILE CONNECTIONS MESSAGES_PER_BODY [KEY]\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int conns = atoi(argv[4]);
    long per = atol(argv[5]);
    char auth[600] = "";
    if (argc > 6) {            /* Basic base64("KEY:") */
        char plain[300], enc[420];
        size_t n = (size_t)snprintf(plain, sizeof plain, "%s:", argv[6]), o = 0;
        for (size_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)(unsigned char)plain[i] << 16 | (i + 1 < n ? (uint32_t)(unsigned char)plain[i + 1] << 8 : 0) |
                         (i + 2 < n ? (unsigned char)plain[i + 2] : 0);
            enc[o++] = B64[v >> 18 & 63];
            enc[o++] = B64[v >> 12 & 63];
            enc[o++] = i + 1 < n ? B64[v >> 6 & 63] : '=';
            enc[o++] = i + 2 < n ? B64[v & 63] : '=';
        }
        enc[o] = 0;
        snprintf(auth, sizeof auth, "Authorization: Basic %s\r\n", enc);
    }
    FILE *f = fopen(argv[3], "r");
    if (!f) {
        perror(argv[3]);
        return 1;
    }
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = 0;
        if (n_bodies == cap) bodies = realloc(bodies, (cap = cap * 2 + 64) * sizeof *bodies);
        bodies[n_bodies++] = strdup(line);
    }
    free(line);
    fclose(f);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    for (int i = 0; i < conns; i++) pthread_create(&th[i], NULL, worker, auth);
    for (int i = 0; i < conns; i++) pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("requests=%zu failures=%ld seconds=%.3f messages_per_second=%.0f\n", n_bodies, failures, secs,
           (double)n_bodies * (double)per / secs);
    return failures ? 1 : 0;
}
