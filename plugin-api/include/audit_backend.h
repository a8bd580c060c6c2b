/*
 * audit_backend.h: the C contract for audit-trail storage-backend plugins (C ABI 1.0).
 *
 * A plugin is a shared library (.so / .dylib / .dll) that exports one function,
 * audit_backend_c_entry (AUDIT_BACKEND_DEFINE_ENTRY writes it). The host (the `audit` command,
 * or a service embedding audit-host) loads the file named by a `type = "plugin"` backend,
 * finds that symbol, and drives the backend through the function table it returns. The
 * semantics are those of the Rust contract (audit-plugin-api): batches written in sequence
 * order, flush, last line, close; retryable, fatal and configuration errors; the optional
 * capabilities validate, health, per-record refusal, read back and statistics.
 *
 * C99 and C++11. The repository's docs/extension-guide.md, "Writing a plugin in C", walks
 * through a complete plugin (examples/c-backend/).
 *
 * Design rules (each is part of the contract):
 *
 * 1. Versions. AUDIT_BACKEND_ABI_VERSION is (major << 16) | minor. The host passes its
 *    version to audit_backend_c_entry; the plugin always stores its own version in
 *    *plugin_abi_version and returns its table, or NULL when it cannot serve that host (a
 *    different major). A host refuses a plugin of another major in one line naming both
 *    versions. Within a major, members are only ever appended to the structs below (never
 *    removed, reordered or retyped), so a 1.0 plugin loads into every 1.x host and a 1.3
 *    plugin into a 1.0 host.
 * 2. Sizes. struct audit_backend starts with its own size (sizeof as the plugin was
 *    compiled) and ABI version. The host reads nothing past the size the plugin reports, and
 *    refuses a table smaller than the 1.0 table. Records are passed as an array plus the
 *    element size: step through them with audit_record_at(), and read a member appended in a
 *    later minor only when AUDIT_RECORD_HAS(record_size, member) says the host passed it.
 * 3. Strings are pointer + length, UTF-8, not NUL-terminated (audit_str, and the (ptr, len)
 *    parameters). Strings the host passes in are borrowed for the duration of the call: copy
 *    what you keep. A NULL pointer is allowed only with length 0.
 * 4. Memory never crosses allocators. Strings going back to the host (error messages, the
 *    last line, a health status, lines read back, refusal reasons, counter names) are copied
 *    by the host through the callback it passes (audit_sink, audit_refusals, audit_counters)
 *    during the call; the plugin frees or reuses its buffer as soon as the callback returns.
 *    The host validates them (UTF-8, NULL with a length, at most 64 MiB each) and turns a
 *    bad one into a fatal error.
 *    The plugin allocates its instance in open() and frees it in close(); the host never
 *    frees plugin memory, and the plugin never frees host memory.
 * 5. Threads. The host calls one instance from one thread at a time (in this host, always
 *    the instance's own thread), so an instance needs no lock of its own. Different instances
 *    may be called at the same time from different threads, and validate() and
 *    audit_backend_c_entry may be called from any thread at any time: state shared between
 *    instances (globals, static buffers) needs a lock. The strings of the table must stay
 *    valid for as long as the library is loaded (the host never unloads it).
 * 6. Nothing unwinds across the boundary. No C++ exception, longjmp, Go panic or Rust panic
 *    may leave a function of the table: catch everything at the boundary and return
 *    AUDIT_FATAL with a message. A crash (a signal) inside a plugin ends the host's process.
 * 7. Errors. Every call returns an audit_status. AUDIT_RETRYABLE: try again later, the host
 *    keeps the records and re-delivers them. AUDIT_FATAL: this instance is broken, the host
 *    stops calling it until the process restarts and keeps its events in the backend's spool.
 *    AUDIT_CONFIG: the configuration is wrong (from open or validate: the message names the
 *    key); from any other call it counts as fatal. Any other value counts as fatal. Put one
 *    message for a person into the error sink (several calls are joined); say which key,
 *    file or server is involved.
 */
#ifndef AUDIT_BACKEND_H
#define AUDIT_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions ------------------------------------------------------------------------ */

/** The ABI this header describes. A new major is a breaking change, announced. */
#define AUDIT_BACKEND_ABI_MAJOR 1
#define AUDIT_BACKEND_ABI_MINOR 0
/** (major << 16) | minor, as passed to and reported by audit_backend_c_entry. */
#define AUDIT_BACKEND_ABI_VERSION_OF(major, minor) \
    ((uint32_t)(((uint32_t)(major) << 16) | ((uint32_t)(minor) & 0xffffu)))
#define AUDIT_BACKEND_ABI_VERSION \
    AUDIT_BACKEND_ABI_VERSION_OF(AUDIT_BACKEND_ABI_MAJOR, AUDIT_BACKEND_ABI_MINOR)
#define AUDIT_BACKEND_ABI_VERSION_MAJOR(version) ((uint32_t)(version) >> 16)
#define AUDIT_BACKEND_ABI_VERSION_MINOR(version) ((uint32_t)(version) & 0xffffu)

/** The one symbol a plugin exports. */
#define AUDIT_BACKEND_ENTRY_SYMBOL "audit_backend_c_entry"

/* ---- Basic types --------------------------------------------------------------------- */

/** A UTF-8 string: pointer + length, not NUL-terminated. ptr may be NULL only when len is 0. */
typedef struct audit_str {
    const char *ptr;
    size_t len;
} audit_str;

/** An audit_str from a string literal, for the table's name, version, ... */
#define AUDIT_STR(literal) { (literal), sizeof(literal) - 1 }

/** What a call returns (rule 7). */
typedef int32_t audit_status;
#define AUDIT_OK 0
#define AUDIT_RETRYABLE 1
#define AUDIT_FATAL 2
#define AUDIT_CONFIG 3

/**
 * Where a plugin hands strings back to the host (rule 4). Call sink->put(sink, ptr, len)
 * during the call; the host copies the bytes before put returns. Valid only until the call
 * that received it returns; never keep it.
 */
typedef struct audit_sink audit_sink;
struct audit_sink {
    /** The host's; do not touch. */
    void *host_data;
    void (*put)(audit_sink *sink, const char *utf8, size_t len);
};

/**
 * Where write_batch_refusing reports records it will never store: one call per refused
 * record, with its sequence number and a reason for a person (copied like a sink's string).
 */
typedef struct audit_refusals audit_refusals;
struct audit_refusals {
    /** The host's; do not touch. */
    void *host_data;
    void (*refuse)(audit_refusals *refusals, uint64_t sequence_number, const char *reason,
                   size_t reason_len);
};

/**
 * Where statistics() reports an instance's counters: one call per counter, with a snake_case
 * name (copied like a sink's string) and its value.
 */
typedef struct audit_counters audit_counters;
struct audit_counters {
    /** The host's; do not touch. */
    void *host_data;
    void (*counter)(audit_counters *counters, const char *name, size_t name_len,
                    uint64_t value);
};

/**
 * One audit event as the host hands it over, borrowed for the call: the canonical JSON line
 * (exactly the bytes the host's file backend stores, without the newline) and the fields a
 * database would index. Members are only appended (rule 2).
 */
typedef struct audit_record {
    /** The canonical JSON line, without the trailing newline. */
    audit_str line;
    /** 1-based, contiguous, never repeated: de-duplicate re-deliveries on it. */
    uint64_t sequence_number;
    /** RFC 3339 UTC with microseconds and Z (sorts as text). */
    audit_str timestamp;
    /** The same instant in microseconds since the Unix epoch. */
    int64_t timestamp_micros;
    audit_str event_id;
    /** For example "data_access". */
    audit_str event_type;
    /** For example "security". */
    audit_str log_level;
    /** The acting user; ptr is NULL when the event has none. */
    audit_str user_id;
} audit_record;

/** The index-th record of an array whose elements are record_size bytes apart. */
static inline const audit_record *audit_record_at(const audit_record *records,
                                                  size_t record_size, size_t index) {
    return (const audit_record *)(const void *)((const char *)(const void *)records +
                                                index * record_size);
}

/** Whether a record of record_size bytes holds member (one appended in a later minor). */
#define AUDIT_RECORD_HAS(record_size, member)                    \
    (offsetof(audit_record, member) + sizeof(((audit_record *)0)->member) <= (record_size))

/* ---- The function table -------------------------------------------------------------- */

/**
 * What audit_backend_c_entry returns: static, never freed (the host never unloads the
 * library). Required members must not be NULL; an optional member left NULL means the
 * plugin does not offer that capability, and the host uses the documented default.
 */
typedef struct audit_backend audit_backend;
struct audit_backend {
    /** sizeof(audit_backend) as the plugin was compiled. The host reads nothing past it. */
    uint32_t size;
    /** AUDIT_BACKEND_ABI_VERSION as the plugin was compiled. */
    uint32_t abi_version;

    /** Short name, for example "c-example" (required, not empty). */
    audit_str name;
    /** The plugin's own version (required, not empty). */
    audit_str version;
    /** One line: what it stores where. */
    audit_str description;
    /** The configuration keys, their types and defaults, for `audit plugin inspect`. */
    audit_str config_help;

    /**
     * Required. Opens an instance with the backend's `config` table as JSON (a UTF-8 object,
     * borrowed). On AUDIT_OK, *instance is the plugin's instance pointer (opaque to the
     * host, may be NULL), handed to every later call. On failure, *instance is ignored and
     * nothing needs closing.
     */
    audit_status (*open)(const char *config_json, size_t config_len, void **instance,
                         audit_sink *error);
    /**
     * Required. Stores count records, in sequence order, all or nothing: on an error the host
     * delivers the same records again later. Ignore a sequence number already stored with the
     * same line; never store a different line under a stored sequence number (return an
     * error). Elements are record_size bytes apart (audit_record_at).
     */
    audit_status (*write_batch)(void *instance, const audit_record *records, size_t count,
                                size_t record_size, audit_sink *error);
    /** Required. Makes everything written so far durable. */
    audit_status (*flush)(void *instance, audit_sink *error);
    /**
     * Optional (NULL: the store is taken as empty at every start). Puts the stored line with
     * the highest sequence number into `line` (once), or nothing when the store is empty, so a
     * restarted host continues the chain instead of starting again at 1.
     */
    audit_status (*last_line)(void *instance, audit_sink *line, audit_sink *error);
    /**
     * Required. Flushes, releases resources and frees the instance, whatever it returns: no
     * call on this instance follows.
     */
    audit_status (*close)(void *instance, audit_sink *error);

    /* Optional capabilities (NULL: not offered). */

    /**
     * validate: checks a config (as JSON) the way open would, without an instance. Keys and
     * values only: it must not connect anywhere or create anything. May be called from any
     * thread, with no instance open.
     */
    audit_status (*validate)(const char *config_json, size_t config_len, audit_sink *error);
    /** health: one line into `status`: what the instance is connected to, what is wrong. */
    audit_status (*health)(void *instance, audit_sink *status, audit_sink *error);
    /**
     * refuse: write_batch, except that records the plugin will never store (too large, a
     * type it rejects) are reported through `refused` instead of failing the whole batch.
     * AUDIT_OK means every record not reported is stored. When it is not NULL, the host's
     * delivery calls it instead of write_batch (which stays required for other callers).
     */
    audit_status (*write_batch_refusing)(void *instance, const audit_record *records,
                                         size_t count, size_t record_size,
                                         audit_refusals *refused, audit_sink *error);
    /**
     * read: puts the stored lines whose sequence number is from_sequence or higher into
     * `lines`, one put per line, in sequence order, at most `limit` of them, each exactly as
     * stored (without the newline); none when nothing more is stored.
     */
    audit_status (*read_from)(void *instance, uint64_t from_sequence, uint32_t limit,
                              audit_sink *lines, audit_sink *error);
    /**
     * stats: reports the instance's counters, one counter() call each: snake_case names,
     * unique, stable across releases, each monotonic since open or a gauge. Called after
     * flushes (at most every 5 s) and before close; keep it cheap. An error (or a bad name)
     * shows as the backend's health; it does not affect delivery.
     */
    audit_status (*statistics)(void *instance, audit_counters *counters, audit_sink *error);
    /* Members added in later 1.x minors go here, and only here. */
};

/** The entry's type: audit_backend_c_entry(host_abi_version, &plugin_abi_version). */
typedef const audit_backend *(*audit_backend_entry_fn)(uint32_t host_abi_version,
                                                       uint32_t *plugin_abi_version);

/* ---- Exporting the entry ------------------------------------------------------------- */

#if defined(_WIN32) || defined(__CYGWIN__)
#define AUDIT_BACKEND_EXPORT __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define AUDIT_BACKEND_EXPORT __attribute__((visibility("default")))
#else
#define AUDIT_BACKEND_EXPORT
#endif

#ifdef __cplusplus
#define AUDIT_BACKEND_EXTERN_C extern "C"
#else
#define AUDIT_BACKEND_EXTERN_C
#endif

/** Whether a host of host_abi_version can use a table built with this header. */
#define AUDIT_BACKEND_ABI_SERVES(host_abi_version)                   \
    (AUDIT_BACKEND_ABI_VERSION_MAJOR(host_abi_version) == AUDIT_BACKEND_ABI_MAJOR)

/**
 * Defines audit_backend_c_entry, returning &table (a static const audit_backend) to hosts of
 * this major and NULL to others, and reporting this header's version either way. Use it
 * once, at file scope, in exactly one translation unit.
 */
#define AUDIT_BACKEND_DEFINE_ENTRY(table)                                                  \
    AUDIT_BACKEND_EXTERN_C AUDIT_BACKEND_EXPORT const audit_backend *audit_backend_c_entry( \
        uint32_t host_abi_version, uint32_t *plugin_abi_version);                          \
    AUDIT_BACKEND_EXTERN_C AUDIT_BACKEND_EXPORT const audit_backend *audit_backend_c_entry( \
        uint32_t host_abi_version, uint32_t *plugin_abi_version) {                         \
        if (plugin_abi_version != NULL) {                                                  \
            *plugin_abi_version = AUDIT_BACKEND_ABI_VERSION;                               \
        }                                                                                  \
        return AUDIT_BACKEND_ABI_SERVES(host_abi_version) ? &(table) : NULL;               \
    }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AUDIT_BACKEND_H */
