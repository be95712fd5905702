/* config: the collector's YAML configuration (docs/config.md documents every key).
 *
 * Accepts the seed's schema (self_telemetry, monitors[] with name, endpoint, labels and
 * profile types either under `sampling:` or directly under the monitor) plus the keys added
 * since: a `global:` block and per-monitor overrides for interval_seconds, timeout_seconds,
 * path, params, headers, bearer_token_file, basic_auth, tls and max_body_bytes.
 *
 * Errors: cfg_parse fails with PP_EINVAL and "FILE:LINE:COLUMN: KEY.PATH: what is wrong" for
 * the first invalid value; unknown keys and ignored types are warnings (cfg_config.warnings).
 * Ownership: a cfg_config owns all its strings (one arena); cfg_free releases it.
 */
#ifndef COLLECTOR_CONFIG_H
#define COLLECTOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/arena.h"
#include "../base/pp_err.h"
#include "../base/scrapeval.h"

/* Profile types, in the order of Go's /debug/pprof endpoints. CFG_CPU is the seed's `profile`. */
typedef enum cfg_ptype {
  CFG_CPU,
  CFG_HEAP,
  CFG_ALLOCS,
  CFG_BLOCK,
  CFG_MUTEX,
  CFG_GOROUTINE,
  CFG_THREADCREATE,
  CFG_NTYPES
} cfg_ptype;

/* "cpu", "heap", ... : the type name stored and queried. */
extern const char *const cfg_type_name[CFG_NTYPES];
/* "profile", "heap", ... : the Go endpoint (and config key) of each type. */
extern const char *const cfg_type_endpoint[CFG_NTYPES];
/* Type by its stored name or config key ("cpu" or "profile"); -1 if none. */
int cfg_type_from_name(const char *name);

typedef struct cfg_kv {
  char *key, *value;
} cfg_kv;

/* Scrape settings that a monitor inherits from `global:` unless it sets its own. */
typedef struct cfg_scrape {
  double interval_seconds; /* 0 = unset */
  double timeout_seconds;  /* 0 = unset: seconds + 10 */
  char *path;              /* NULL = unset: /debug/pprof */
  cfg_kv *params;          /* extra query parameters */
  size_t nparams;
  cfg_kv *headers; /* extra request headers */
  size_t nheaders;
  char *bearer_token_file;
  char *basic_username;
  char *basic_password;
  char *basic_password_file;
  char *tls_ca_file, *tls_cert_file, *tls_key_file, *tls_server_name;
  int tls_insecure_skip_verify; /* -1 unset, 0, 1 */
  uint64_t max_body_bytes;      /* 0 = unset: 64 MiB */
} cfg_scrape;

typedef struct cfg_type {
  bool enabled;
  int seconds;             /* CPU: duration; others: >0 asks for a delta profile */
  double interval_seconds; /* 0 = unset */
} cfg_type;

typedef struct cfg_monitor {
  char *name;
  char *endpoint; /* scheme://host:port[/prefix] */
  cfg_kv *labels;
  size_t nlabels;
  cfg_type types[CFG_NTYPES];
  cfg_scrape scrape; /* the monitor's own settings; see cfg_effective */
  int shard;         /* `shard:` N pins it (to N mod the shard count), CFG_SHARD_ALL, or
                        CFG_SHARD_HASH (unset): its endpoint's hash picks (sv_shard_of) */
} cfg_monitor;

#define CFG_SHARD_HASH (-1)
#define CFG_SHARD_ALL (-2)

typedef struct cfg_config {
  int self_pprof_port; /* 0 = no self telemetry */
  int self_interval_seconds;
  cfg_scrape global;
  cfg_monitor *monitors;
  size_t nmonitors;
  /* sharding: {shards, previous_shards, change_at}: the collectors given the same file and
   * --shard 0..shards-1 split its monitors between them. A change of the count names the
   * moment it takes effect (Unix seconds), so that every shard, whenever its copy of the file
   * arrives, switches at the same time: until change_at previous_shards is in effect. */
  int shards;          /* 1 without the block */
  int previous_shards; /* 0 = no change planned */
  int64_t change_at;   /* Unix seconds; with previous_shards */
  /* query: {peers: [URL, ...]}: the other shards (or collectors) whose profiles merges add
   * (collector/web_fanout.h), each an http(s) base URL (sv_check_endpoint); at most
   * CFG_MAX_PEERS. Applied on every reload, besides the --peer flags. */
  char **peers;
  size_t npeers;
  char **warnings; /* human-readable, with file:line:column */
  size_t nwarnings;
  arena mem;
} cfg_config;

/* Limits on what a config may ask for. A config file is at most CFG_MAX_BYTES; it may be gzip
 * (the operator compresses configs that would not fit a ConfigMap's 1 MiB), and then its text
 * is at most CFG_MAX_TEXT. */
#define CFG_MAX_BYTES ((size_t)4 << 20)
#define CFG_MAX_TEXT ((size_t)64 << 20)
#define CFG_MAX_MONITORS 100000
#define CFG_MAX_PEERS 128 /* WEB_FANOUT_MAX_PEERS */
#define CFG_MAX_SECONDS SV_MAX_SECONDS /* base/scrapeval.h: the rules the operator applies too */

/* Parses YAML text; `name` (the file name) prefixes error and warning positions. */
int cfg_parse(const char *text, size_t len, const char *name, cfg_config **ret_config, pp_err *err);
/* Reads a config file: its text, gunzipped when the file is gzip (limits above). *ret_text is
 * NUL-terminated, malloc'd and owned by the caller. */
int cfg_read_file(const char *path, char **ret_text, size_t *ret_len, pp_err *err);
/* Reads (cfg_read_file) and parses a file. */
int cfg_load_file(const char *path, cfg_config **ret_config, pp_err *err);
void cfg_free(cfg_config *c);

/* The shard count in effect at now_s (Unix seconds). */
int cfg_shards_at(const cfg_config *c, int64_t now_s);
/* Whether shard `shard` of `shards` scrapes m. A shard >= shards scrapes only CFG_SHARD_ALL
 * monitors (a new replica before its share begins, or one about to be removed). */
bool cfg_on_shard(const cfg_monitor *m, int shard, int shards);
/* Keeps the monitors that shard `shard` scrapes at now_s, in their order; the rest are dropped
 * from c. Returns how many were dropped. */
size_t cfg_keep_shard(cfg_config *c, int shard, int64_t now_s);

/* With self_telemetry set, adds the monitor that scrapes the collector itself: name "self",
 * http://127.0.0.1:PORT, labels __k8s_namespace=self and __k8s_name=self (as the seed did), a
 * CPU profile of interval_seconds taken back to back. No-op without self_telemetry or when a
 * monitor is already named "self". */
int cfg_add_self_monitor(cfg_config *c, pp_err *err);

/* The settings in force for one (monitor, type), defaults applied. */
typedef struct cfg_effective {
  char url[2048];      /* full URL including query */
  int64_t interval_ms; /* 0 = back to back */
  int64_t timeout_ms;
  int seconds;
  uint64_t max_body_bytes;
  const cfg_scrape *own, *global; /* for headers, auth and TLS: own wins field by field */
} cfg_effective;

/* Defaults: path /debug/pprof; timeout seconds + 10; max body 64 MiB; interval: back to back
 * for CPU and delta profiles, CFG_SNAPSHOT_INTERVAL for snapshots. Fails (PP_EINVAL) only if
 * the URL would not fit. */
#define CFG_SNAPSHOT_INTERVAL_SECONDS 60
int cfg_effective_for(const cfg_config *c, const cfg_monitor *m, cfg_ptype t, cfg_effective *ret,
                      pp_err *err);

/* The first non-NULL of own->field and global->field. */
#define CFG_PICK(eff, field) ((eff)->own->field ? (eff)->own->field : (eff)->global->field)

#endif
