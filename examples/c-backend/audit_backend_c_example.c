/*
 * A complete storage backend in plain C99 + POSIX, against plugin-api/include/audit_backend.h:
 * a file store that appends each record's canonical line to the file `path`, skips sequence
 * numbers it already holds, and implements last_line, read back (read_from), health,
 * statistics and validate. Build: `make` (see README.md).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "audit_backend.h"

/* ---- Errors: one message into the host's sink ------------------------------------------ */

static audit_status fail(audit_sink *error, audit_status status, const char *format, ...) {
    char message[1024];
    va_list args;
    int n;
    va_start(args, format);
    n = vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (n < 0) {
        n = 0;
    }
    if ((size_t)n >= sizeof message) {
        n = (int)sizeof message - 1;
    }
    error->put(error, message, (size_t)n);
    return status;
}

/* ---- Configuration: {"path": "..."}, parsed by hand (no JSON library needed) --------- */

typedef struct config {
    char *path;
} config;

static const char *skip_space(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* Parses the JSON string at *p (after its opening quote) into a new NUL-terminated buffer. */
static char *parse_string(const char **p, const char *end) {
    size_t cap = (size_t)(end - *p) + 1, n = 0;
    char *out = (char *)malloc(cap);
    const char *s = *p;
    if (out == NULL) {
        return NULL;
    }
    while (s < end && *s != '"') {
        char c = *s++;
        if (c == '\\') {
            if (s >= end) {
                break;
            }
            c = *s++;
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case '"': case '\\': case '/': break;
            case 'u': {
                unsigned v = 0;
                int i;
                if (end - s < 4) {
                    free(out);
                    return NULL;
                }
                for (i = 0; i < 4; i++) {
                    char h = *s++;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else { free(out); return NULL; }
                }
                if (v >= 0x80) { /* paths in this example are ASCII-escaped only below U+0080 */
                    free(out);
                    return NULL;
                }
                c = (char)v;
                break;
            }
            default:
                free(out);
                return NULL;
            }
        }
        out[n++] = c;
    }
    if (s >= end) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *p = s + 1;
    return out;
}

static audit_status parse_config(const char *json, size_t len, config *cfg, audit_sink *error) {
    const char *p = json, *end = json + len;
    cfg->path = NULL;
    p = skip_space(p, end);
    if (p >= end || *p++ != '{') {
        return fail(error, AUDIT_CONFIG, "the config is not a JSON object");
    }
    for (;;) {
        char *key, *value;
        p = skip_space(p, end);
        if (p < end && *p == '}') {
            break;
        }
        if (p >= end || *p++ != '"' || (key = parse_string(&p, end)) == NULL) {
            free(cfg->path);
            return fail(error, AUDIT_CONFIG, "the config is not a JSON object of strings");
        }
        p = skip_space(p, end);
        if (p >= end || *p++ != ':') {
            free(key);
            free(cfg->path);
            return fail(error, AUDIT_CONFIG, "the config is not a JSON object of strings");
        }
        p = skip_space(p, end);
        if (strcmp(key, "path") != 0) {
            audit_status s = fail(error, AUDIT_CONFIG,
                                  "unknown key `%s`; the only key is `path` (the file to append to)",
                                  key);
            free(key);
            free(cfg->path);
            return s;
        }
        free(key);
        if (p >= end || *p++ != '"' || (value = parse_string(&p, end)) == NULL) {
            free(cfg->path);
            return fail(error, AUDIT_CONFIG, "`path` must be a string (the file to append to)");
        }
        free(cfg->path);
        cfg->path = value;
        p = skip_space(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '}') {
            break;
        }
        free(cfg->path);
        return fail(error, AUDIT_CONFIG, "the config is not a JSON object of strings");
    }
    if (cfg->path == NULL || cfg->path[0] == '\0') {
        free(cfg->path);
        return fail(error, AUDIT_CONFIG, "`path` is required: the file the lines are appended to");
    }
    return AUDIT_OK;
}

/* ---- The instance ------------------------------------------------------------------------ */

typedef struct store {
    char *path;
    int fd;
    off_t size;          /* bytes of whole lines in the file */
    uint64_t last_seq;   /* 0: empty */
    char *last_line;     /* the line of last_seq, without the newline */
    size_t last_len;
    uint64_t appended;   /* lines appended by this instance */
    uint64_t skipped;    /* lines skipped as already held */
} store;

/* The sequence number in a canonical line, or 0 when it has none. */
static uint64_t sequence_of(const char *line, size_t len) {
    static const char key[] = "\"sequence_number\":";
    const char *end = line + len, *p = line;
    size_t klen = sizeof key - 1;
    uint64_t v = 0;
    while ((size_t)(end - p) >= klen) {
        if (memcmp(p, key, klen) == 0) {
            p += klen;
            while (p < end && *p >= '0' && *p <= '9') {
                v = v * 10u + (uint64_t)(*p - '0');
                p++;
            }
            return v;
        }
        p++;
    }
    return 0;
}

/* Reads the whole file; the caller frees *data. */
static int read_all(int fd, char **data, size_t *len) {
    struct stat st;
    size_t n = 0;
    if (fstat(fd, &st) != 0) {
        return -1;
    }
    *data = (char *)malloc((size_t)st.st_size + 1);
    if (*data == NULL) {
        return -1;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = pread(fd, *data + n, (size_t)st.st_size - n, (off_t)n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            free(*data);
            return -1;
        }
        n += (size_t)r;
    }
    *len = n;
    return 0;
}

/* Finds the last whole line and drops a torn one (a write cut short by a crash). */
static audit_status load_tail(store *s, audit_sink *error) {
    char *data = NULL;
    size_t len = 0, end, start;
    if (read_all(s->fd, &data, &len) != 0) {
        return fail(error, AUDIT_RETRYABLE, "cannot read %s: %s", s->path, strerror(errno));
    }
    end = len;
    while (end > 0 && data[end - 1] != '\n') {
        end--;
    }
    if (end != len && ftruncate(s->fd, (off_t)end) != 0) {
        free(data);
        return fail(error, AUDIT_FATAL, "cannot cut the torn last line of %s: %s", s->path,
                    strerror(errno));
    }
    s->size = (off_t)end;
    if (end > 0) {
        start = end - 1;
        while (start > 0 && data[start - 1] != '\n') {
            start--;
        }
        s->last_len = end - 1 - start;
        s->last_line = (char *)malloc(s->last_len + 1);
        if (s->last_line == NULL) {
            free(data);
            return fail(error, AUDIT_FATAL, "out of memory");
        }
        memcpy(s->last_line, data + start, s->last_len);
        s->last_seq = sequence_of(s->last_line, s->last_len);
    }
    free(data);
    return AUDIT_OK;
}

static audit_status store_open(const char *config_json, size_t config_len, void **instance,
                               audit_sink *error) {
    config cfg;
    store *s;
    audit_status status = parse_config(config_json, config_len, &cfg, error);
    if (status != AUDIT_OK) {
        return status;
    }
    s = (store *)calloc(1, sizeof *s);
    if (s == NULL) {
        free(cfg.path);
        return fail(error, AUDIT_FATAL, "out of memory");
    }
    s->path = cfg.path;
    s->fd = open(s->path, O_RDWR | O_CREAT | O_APPEND, 0600);
    if (s->fd < 0) {
        status = fail(error, AUDIT_CONFIG, "`path`: cannot open %s: %s", s->path, strerror(errno));
        free(s->path);
        free(s);
        return status;
    }
    status = load_tail(s, error);
    if (status != AUDIT_OK) {
        close(s->fd);
        free(s->last_line);
        free(s->path);
        free(s);
        return status;
    }
    *instance = s;
    return AUDIT_OK;
}

static audit_status store_write_batch(void *instance, const audit_record *records, size_t count,
                                      size_t record_size, audit_sink *error) {
    store *s = (store *)instance;
    size_t i, total = 0, n = 0, added = 0;
    uint64_t seq = s->last_seq;
    const audit_record *last = NULL;
    char *buf;
    /* One write for the batch: every line not held yet, in order. */
    for (i = 0; i < count; i++) {
        const audit_record *r = audit_record_at(records, record_size, i);
        if (r->sequence_number > seq) {
            total += r->line.len + 1;
            seq = r->sequence_number;
        }
    }
    if (total == 0) {
        s->skipped += count;
        return AUDIT_OK;
    }
    buf = (char *)malloc(total);
    if (buf == NULL) {
        return fail(error, AUDIT_RETRYABLE, "out of memory for a batch of %lu bytes",
                    (unsigned long)total);
    }
    seq = s->last_seq;
    for (i = 0; i < count; i++) {
        const audit_record *r = audit_record_at(records, record_size, i);
        if (r->sequence_number > seq) {
            memcpy(buf + n, r->line.ptr, r->line.len);
            buf[n + r->line.len] = '\n';
            n += r->line.len + 1;
            seq = r->sequence_number;
            last = r;
            added++;
        } else {
            s->skipped++;
        }
    }
    for (i = 0; i < n;) {
        ssize_t w = write(s->fd, buf + i, n - i);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int err = errno;
            free(buf);
            /* All or nothing: cut what got written; the host delivers the batch again. */
            if (ftruncate(s->fd, s->size) != 0) {
                return fail(error, AUDIT_FATAL, "write to %s failed (%s), and so did cutting it back",
                            s->path, strerror(err));
            }
            return fail(error, AUDIT_RETRYABLE, "write to %s failed: %s", s->path, strerror(err));
        }
        i += (size_t)w;
    }
    free(buf);
    {
        char *copy = (char *)malloc(last->line.len + 1);
        if (copy == NULL) {
            return fail(error, AUDIT_FATAL, "out of memory");
        }
        memcpy(copy, last->line.ptr, last->line.len);
        free(s->last_line);
        s->last_line = copy;
        s->last_len = last->line.len;
    }
    s->size += (off_t)n;
    s->appended += added;
    s->last_seq = seq;
    return AUDIT_OK;
}

static audit_status store_flush(void *instance, audit_sink *error) {
    store *s = (store *)instance;
    if (fsync(s->fd) != 0) {
        return fail(error, AUDIT_FATAL, "fsync of %s failed: %s", s->path, strerror(errno));
    }
    return AUDIT_OK;
}

static audit_status store_last_line(void *instance, audit_sink *line, audit_sink *error) {
    store *s = (store *)instance;
    (void)error;
    if (s->last_line != NULL) {
        line->put(line, s->last_line, s->last_len);
    }
    return AUDIT_OK;
}

static audit_status store_close(void *instance, audit_sink *error) {
    store *s = (store *)instance;
    audit_status status = AUDIT_OK;
    if (fsync(s->fd) != 0) {
        status = fail(error, AUDIT_FATAL, "fsync of %s failed: %s", s->path, strerror(errno));
    }
    if (close(s->fd) != 0 && status == AUDIT_OK) {
        status = fail(error, AUDIT_FATAL, "close of %s failed: %s", s->path, strerror(errno));
    }
    free(s->last_line);
    free(s->path);
    free(s);
    return status;
}

static audit_status store_validate(const char *config_json, size_t config_len, audit_sink *error) {
    config cfg;
    audit_status status = parse_config(config_json, config_len, &cfg, error);
    if (status == AUDIT_OK) {
        free(cfg.path);
    }
    return status;
}

static audit_status store_health(void *instance, audit_sink *status, audit_sink *error) {
    store *s = (store *)instance;
    char text[512];
    int n = snprintf(text, sizeof text, "file %s: last sequence %llu, %llu appended, %llu skipped",
                     s->path, (unsigned long long)s->last_seq, (unsigned long long)s->appended,
                     (unsigned long long)s->skipped);
    (void)error;
    if (n < 0) {
        n = 0;
    }
    if ((size_t)n >= sizeof text) {
        n = (int)sizeof text - 1;
    }
    status->put(status, text, (size_t)n);
    return AUDIT_OK;
}

static audit_status store_read_from(void *instance, uint64_t from_sequence, uint32_t limit,
                                    audit_sink *lines, audit_sink *error) {
    store *s = (store *)instance;
    char *data = NULL;
    size_t len = 0, start = 0, i;
    uint32_t sent = 0;
    if (read_all(s->fd, &data, &len) != 0) {
        return fail(error, AUDIT_RETRYABLE, "cannot read %s: %s", s->path, strerror(errno));
    }
    if (len > (size_t)s->size) {
        len = (size_t)s->size;
    }
    for (i = 0; i < len && sent < limit; i++) {
        if (data[i] == '\n') {
            if (sequence_of(data + start, i - start) >= from_sequence) {
                lines->put(lines, data + start, i - start);
                sent++;
            }
            start = i + 1;
        }
    }
    free(data);
    return AUDIT_OK;
}

static audit_status store_statistics(void *instance, audit_counters *counters,
                                     audit_sink *error) {
    store *s = (store *)instance;
    (void)error;
    counters->counter(counters, "last_sequence", 13, s->last_seq);
    counters->counter(counters, "lines_appended", 14, s->appended);
    counters->counter(counters, "lines_skipped", 13, s->skipped);
    return AUDIT_OK;
}

/* ---- The table and the entry ------------------------------------------------------------ */

static const audit_backend table = {
    sizeof(audit_backend),
    AUDIT_BACKEND_ABI_VERSION,
    AUDIT_STR("c-example"),
    AUDIT_STR("0.1.0"),
    AUDIT_STR("Appends canonical lines to one file (an example plugin in C)"),
    AUDIT_STR("path (string, required): the file the lines are appended to; created if missing.\n"
              "Sequence numbers the file already holds are skipped."),
    store_open,
    store_write_batch,
    store_flush,
    store_last_line,
    store_close,
    store_validate,
    store_health,
    NULL, /* write_batch_refusing: this store refuses no single record */
    store_read_from,
    store_statistics,
};

AUDIT_BACKEND_DEFINE_ENTRY(table)
