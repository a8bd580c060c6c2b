#include <string.h>
#ifdef AUDIT_FIXTURE_SLOW
#include <unistd.h>
#endif
#ifndef AUDIT_FIXTURE_SIZE
#define AUDIT_FIXTURE_SIZE sizeof(audit_backend)
#endif
#ifndef AUDIT_FIXTURE_NAME
#define AUDIT_FIXTURE_NAME AUDIT_STR("fixture")
#endif
static int instance_token;
static audit_status f_open(const char *c, size_t n, void **i, audit_sink *e) {
    (void)c; (void)n; (void)e; *i = &instance_token; return AUDIT_OK;
}
#ifndef AUDIT_FIXTURE_NO_WRITE
static audit_status f_write(void *i, const audit_record *r, size_t n, size_t s, audit_sink *e) {
    (void)i; (void)r; (void)n; (void)s; (void)e; return AUDIT_OK;
}
#endif
static audit_status f_flush(void *i, audit_sink *e) {
    (void)i;
#ifdef AUDIT_FIXTURE_SLOW
    sleep(2);
#endif
#ifdef AUDIT_FIXTURE_MISBEHAVE
    e->put(e, "disk on fire", 12);
    return 42;
#else
    (void)e;
    return AUDIT_OK;
#endif
}
static audit_status f_close(void *i, audit_sink *e) { (void)i; (void)e; return AUDIT_OK; }
#ifdef AUDIT_FIXTURE_MISBEHAVE
static audit_status f_last_line(void *i, audit_sink *line, audit_sink *e) {
    (void)i; (void)e; line->put(line, "{\"x\":\"\xff\"}", 9); return AUDIT_OK;
}
static audit_status f_health(void *i, audit_sink *status, audit_sink *e) {
    (void)i; (void)e; status->put(status, "one", 3); status->put(status, "two", 3); return AUDIT_OK;
}
static audit_status f_refusing(void *i, const audit_record *r, size_t n, size_t s,
                               audit_refusals *refused, audit_sink *e) {
    size_t k;
    (void)i; (void)e;
    for (k = 0; k < n; k++) {
        const audit_record *rec = audit_record_at(r, s, k);
        if (rec->sequence_number % 2 == 0) {
            static const char why[] = "even sequence numbers are refused";
            refused->refuse(refused, rec->sequence_number, why, strlen(why));
        }
    }
    return AUDIT_OK;
}
static audit_status f_statistics(void *i, audit_counters *c, audit_sink *e) {
    (void)i; (void)e;
    c->counter(c, "fine", 4, 1);
    c->counter(c, "bad\xff", 4, 2);
    return AUDIT_OK;
}
#endif
static const audit_backend table = {
    AUDIT_FIXTURE_SIZE, AUDIT_BACKEND_ABI_VERSION,
    AUDIT_FIXTURE_NAME, AUDIT_STR("1.2.3"), AUDIT_STR("a test fixture"), AUDIT_STR("no keys"),
    f_open,
#ifdef AUDIT_FIXTURE_NO_WRITE
    NULL,
#else
    f_write,
#endif
    f_flush,
#ifdef AUDIT_FIXTURE_MISBEHAVE
    f_last_line,
#else
    NULL,
#endif
    f_close, NULL,
#ifdef AUDIT_FIXTURE_MISBEHAVE
    f_health, f_refusing, NULL, f_statistics
#else
    NULL, NULL, NULL, NULL
#endif
};
AUDIT_BACKEND_DEFINE_ENTRY(table)
