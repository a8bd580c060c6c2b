#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "audit_backend.h"
typedef struct flaky { char down[1024]; char path[1024]; uint64_t last; } flaky;
static int value(const char *json, size_t len, const char *key, char *out) {
    char pattern[64];
    const char *p, *end = json + len, *q;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    p = strstr(json, pattern);
    if (p == NULL || p >= end) return -1;
    p += strlen(pattern);
    q = memchr(p, '"', (size_t)(end - p));
    if (q == NULL || q - p >= 1023) return -1;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return 0;
}
static audit_status f_open(const char *c, size_t n, void **i, audit_sink *e) {
    flaky *f = (flaky *)calloc(1, sizeof *f);
    char *json = (char *)malloc(n + 1);
    memcpy(json, c, n);
    json[n] = '\0';
    if (value(json, n, "down", f->down) != 0 || value(json, n, "path", f->path) != 0) {
        free(json); free(f);
        e->put(e, "`down` and `path` are required", 30);
        return AUDIT_CONFIG;
    }
    free(json);
    if (access(f->down, F_OK) == 0) {
        free(f);
        e->put(e, "the store is down at open", 25);
        return AUDIT_RETRYABLE;
    }
    *i = f;
    return AUDIT_OK;
}
static audit_status f_write(void *i, const audit_record *r, size_t n, size_t s, audit_sink *e) {
    flaky *f = (flaky *)i;
    FILE *out;
    size_t k;
    if (access(f->down, F_OK) == 0) {
        e->put(e, "the store is down", 17);
        return AUDIT_RETRYABLE;
    }
    out = fopen(f->path, "a");
    if (out == NULL) return AUDIT_FATAL;
    for (k = 0; k < n; k++) {
        const audit_record *rec = audit_record_at(r, s, k);
        if (rec->sequence_number > f->last) {
            fwrite(rec->line.ptr, 1, rec->line.len, out);
            fputc('\n', out);
            f->last = rec->sequence_number;
        }
    }
    return fclose(out) == 0 ? AUDIT_OK : AUDIT_RETRYABLE;
}
static audit_status f_flush(void *i, audit_sink *e) {
    flaky *f = (flaky *)i;
    if (access(f->down, F_OK) == 0) {
        e->put(e, "the store is down", 17);
        return AUDIT_RETRYABLE;
    }
    return AUDIT_OK;
}
static audit_status f_close(void *i, audit_sink *e) { (void)e; free(i); return AUDIT_OK; }
static const audit_backend table = {
    sizeof(audit_backend), AUDIT_BACKEND_ABI_VERSION,
    AUDIT_STR("flaky"), AUDIT_STR("0.0.1"), AUDIT_STR("down while a file exists"), AUDIT_STR(""),
    f_open, f_write, f_flush, NULL, f_close, NULL, NULL, NULL, NULL, NULL
};
AUDIT_BACKEND_DEFINE_ENTRY(table)
