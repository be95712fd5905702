/* kbuild: pure builders of what the operator writes, starting with the collector's config.
 *
 * kbuild_config_yaml turns discovered targets (one per ready EndpointSlice address) into the
 * collector's config.yaml: sorted by namespace, service, pod and port so the same cluster
 * state always gives the same bytes (the ConfigMap is written only when they change); monitor
 * names are the pod's, made unique with the port and then the PprofMonitor when a pod is
 * selected twice; every string is emitted as an escaped double-quoted YAML scalar, so names
 * and labels from the cluster cannot inject YAML. Ownership: the returned text is malloc'd.
 */
#ifndef OPERATOR_KBUILD_H
#define OPERATOR_KBUILD_H

#include <jansson.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "../base/pp_err.h"

typedef struct kbuild_target {
  const char *namespace_, *service, *pod, *node, *monitor; /* monitor: the PprofMonitor's name */
  const char *scheme;                                      /* "http" or "https" */
  const char *ip;                                          /* IPv4 or IPv6 address */
  int port;
  const char *path;     /* prefix before /debug/pprof ("internal", "/internal/"), or NULL */
  const json_t *config; /* PprofMonitor spec.config ({profile: {seconds: N}, heap: ...}) or NULL */
  double interval_seconds, timeout_seconds; /* 0 = unset */
  const char *version; /* the workload's version (kbuild_pod_version), the series label
                        * `version`; NULL or "" = none, no label */
  int pin;             /* the PprofMonitor's spec.shard: KBUILD_PIN_HASH (0: the target's address
                        * decides), KBUILD_PIN_ALL (every shard), or 1 + the shard it is pinned to */
} kbuild_target;
#define KBUILD_PIN_HASH 0
#define KBUILD_PIN_ALL (-1)

/* Shards (issue 15 §1). A stack runs `shards` collectors; a change of the count is planned: the
 * collectors switch from `previous` to `shards` at the Unix second change_at (the collector's
 * sharding block, docs/config.md), so a ConfigMap reaching the pods at different times cannot
 * make a target scraped twice or not at all. previous = 0: no change was ever planned. */
typedef struct kbuild_shards {
  int shards, previous;
  int64_t change_at;
} kbuild_shards;
#define KBUILD_MAX_SHARDS 100 /* the CRD's maximum of spec.shards (the collector takes 1000) */

/* The plan to follow, from spec.shards (want), the plan in force (cur: the config ConfigMap's
 * annotations, kbuild_shards_read; NULL when the stack has no ConfigMap yet: a new stack starts
 * at its count at once) and now: a change in progress (now < cur->change_at) runs to its end
 * first; a new count is planned for now + delay_s; else cur stays as it is (same bytes). */
void kbuild_shard_plan(int want, const kbuild_shards *cur, int64_t now_s, int64_t delay_s, kbuild_shards *ret);
/* The collectors that must run under plan p at now: both counts' until change_at, then its own. */
int kbuild_shards_running(const kbuild_shards *p, int64_t now_s);
/* The plan a ConfigMap's annotations hold (KBUILD_ANN_*); one shard without them, or when they
 * do not make a plan (edited by hand: the next change is planned from one shard). */
#define KBUILD_ANN_SHARDS "resources.cattle.io/shards"
#define KBUILD_ANN_PREVIOUS "resources.cattle.io/previous-shards"
#define KBUILD_ANN_CHANGE_AT "resources.cattle.io/shard-change-at"
void kbuild_shards_read(const json_t *cm, kbuild_shards *ret);
/* Targets each shard scrapes once p's change is done (counts[0..p->shards-1]; a target pinned or
 * on every shard counted where it goes, as the collector's cfg_on_shard decides). */
void kbuild_shard_counts(const kbuild_target *t, size_t n, int shards, uint64_t *counts);
/* spec.shards of a stack: 1..KBUILD_MAX_SHARDS, 1 when absent; PP_EINVAL otherwise. */
int kbuild_stack_shards(const json_t *spec, int *ret, pp_err *err);
/* spec.query.replicas of a stack: the query Deployment's replicas, 0..KBUILD_MAX_QUERY (1 when
 * spec.query has no replicas), -1 when the stack has no spec.query; PP_EINVAL otherwise. */
#define KBUILD_MAX_QUERY 10
int kbuild_stack_query(const json_t *spec, int *ret, pp_err *err);
/* The query Deployment's and Service's name: <op>-query. */
void kbuild_query_name(const char *op_name, char *buf, size_t n);

/* The version of the workload a pod runs, for the `version` label: the pod's
 * app.kubernetes.io/version label when set, else the tag of the image of the container that
 * exposes port (containerPort; else the first container), else that image's digest (from the
 * image reference's @sha256:..., else from the container's status imageID). "" when none of
 * these is there. At most KBUILD_MAX_VERSION bytes are written (longer values are cut, never
 * refused: a version is a label, not the target's identity). */
#define KBUILD_MAX_VERSION 128
void kbuild_pod_version(const json_t *pod, int port, char buf[KBUILD_MAX_VERSION + 1]);

/* Fails (PP_EINVAL, naming the target) on a target that kbuild_target_check refuses: the
 * caller checks each target first and leaves the bad ones out, so one bad target cannot make
 * the whole config unusable. sh (or NULL): the sharding block, written only for more than one
 * shard or once a change was planned, so a stack of one shard keeps its config's bytes. */
int kbuild_config_yaml(const kbuild_target *t, size_t n, const kbuild_shards *sh, char **ret_yaml, pp_err *err);
/* The same with `query: {peers: [...]}` (issue 15 §3: every shard answers for all of them by
 * asking the others; the collector skips itself in the list) when npeers > 0. */
int kbuild_config_yaml_peers(const kbuild_target *t, size_t n, const kbuild_shards *sh, const char *const *peers,
                             size_t npeers, char **ret_yaml, pp_err *err);

/* The collector pods of operator op in namespace ns, from a pods informer's items (an object of
 * trimmed pods, op_trim_pod): labelled app.kubernetes.io/instance=op and app.kubernetes.io/name
 * pprof-collector (shard 0) or pprof-collector-shard, not being deleted, with a status.podIP
 * that is an IP address. Their URLs http://IP:8989 (IPv6 in brackets), sorted, at most max,
 * each at most KBUILD_PEER_URL bytes; returns how many. */
#define KBUILD_PEER_URL 64
#define KBUILD_MAX_PEERS 128 /* the collector's WEB_FANOUT_MAX_PEERS */
size_t kbuild_collector_peers(const json_t *pods, const char *ns, const char *op, char (*urls)[KBUILD_PEER_URL], size_t max);

/* What one PprofMonitor's spec asks of its targets, checked with the collector's own rules
 * (base/scrapeval.h): spec.endpoint.path (a prefix; the leading / may be left out),
 * spec.endpoint.scheme, spec.endpoint.interval and .timeout (kbuild_duration, then the
 * collector's bounds), spec.config.<type>.seconds (the collector's range; `trace` is not a
 * pprof profile and is ignored). Borrowed pointers into spec. PP_EINVAL names the field:
 * "spec.endpoint.interval: \"100000h\" is an interval of 3.6e+08 s, outside 0.001..86400 s". */
typedef struct kbuild_monitor {
  const char *scheme;   /* "http" or "https" */
  const char *path;     /* or NULL */
  const json_t *config; /* or NULL */
  double interval_seconds, timeout_seconds; /* 0 = unset */
  int pin;                                  /* spec.shard: 0..999 or "all", as kbuild_target.pin */
} kbuild_monitor;
int kbuild_monitor_check(const json_t *spec, kbuild_monitor *ret, pp_err *err);

/* One target, checked with the same rules as the collector will apply to what
 * kbuild_config_yaml writes for it: its endpoint URL, pod name, port, seconds, interval and
 * timeout. PP_EINVAL says what is wrong. */
int kbuild_target_check(const kbuild_target *t, pp_err *err);

/* A duration as the CRDs write it: an integer number of seconds, or a string such as "30s",
 * "1h30m", "1.5h" (base/units.h). PP_EINVAL for anything else. */
int kbuild_duration(const json_t *v, double *ret_seconds, pp_err *err);

/* The image reference as the seed builds it from a collectorImage/reloaderImage spec:
 * registry (default docker.io) / repo / image : tag (default latest), with @sha appended when
 * sha is set. PP_EINVAL when image is missing or the result does not fit. */
int kbuild_image(const json_t *spec, char *buf, size_t n, pp_err *err);

/* A Kubernetes quantity ("5Gi", "500M", "1e9", "1.5Gi") in bytes, rounded down. PP_EINVAL for
 * anything else, negatives and overflow. */
int kbuild_quantity(const char *q, uint64_t *ret_bytes, pp_err *err);

/* The objects a PprofCollectorStack owns, for server-side apply, in the order they are applied:
 * Service <op>-collector (port 8989 "web"), PersistentVolumeClaim <op>-collector-data
 * (request = spec.storage.diskSpace), ConfigMap <op>-config (metadata only: its config.yaml
 * belongs to the monitors' reconciler), StatefulSet <op>-collector (collector with --config,
 * --data-dir, --web-port 8989, the retention flags of kbuild_stack_retention, probes on /readyz and
 * /healthz, restricted securityContext, non-root; the reloader sidecar only when
 * spec.reloaderImage is set; the object store's flags and credentials of kbuild_stack_objstore
 * when spec.storage.objectStore is set). Each carries an ownerReference to the stack (controller=true) and
 * the labels app.kubernetes.io/{name,instance,managed-by}. PP_EINVAL names the bad field. */
/* Shards: each shard k in 1..sets-1 adds a PersistentVolumeClaim <op>-collector-shard-<k>-data
 * and a StatefulSet <op>-collector-shard-<k> (pods labelled KBUILD_SHARD_LABEL=k, --shard=<k>,
 * object store prefix <prefix>/shard-<k>), with 1 replica for k < running (kbuild_shards_running
 * of plan). A shard past it is retired (retired[k], see kbuild_retired): its StatefulSet runs
 * with --query-only while it answers, at 0 replicas after (a shard no longer running keeps its
 * objects: no delete needed). Shard 0 is the objects above unchanged, so a stack of one shard is
 * what it always was. The ConfigMap carries plan in its annotations. plan NULL: one shard,
 * running = sets = 1. retired NULL: no shard past running answers. */
#define KBUILD_SHARD_LABEL "resources.cattle.io/shard"
/* Shard k's StatefulSet: <op>-collector for shard 0 (as with one collector), else
 * <op>-collector-shard-<k>; its claim is that name with "-data". */
void kbuild_shard_set_name(const char *op_name, int k, char *buf, size_t n);
/* Query front ends (issue 15 §3), when the stack has spec.query or query_known (the Deployment
 * exists: spec.query was removed, so it is scaled to 0, not deleted): the Service and the
 * Deployment kbuild_query_name, pods labelled app.kubernetes.io/name=pprof-collector-query (not
 * peers, not behind the collector's Service) running shard 0's pod with --query-only, an emptyDir
 * for a data directory, and neither the object store's flags nor its credentials (a query front
 * end restoring shard 0's segments would answer them twice). */
typedef struct kbuild_retired {
  int64_t at;     /* when it stopped scraping (Unix s): its StatefulSet's KBUILD_ANN_RETIRED_AT */
  bool answering; /* still within the retention policy's period: runs, query only */
} kbuild_retired;
#define KBUILD_ANN_RETIRED_AT "resources.cattle.io/retired-at"
int kbuild_stack_objects(const json_t *stack, const char *op_name, const kbuild_shards *plan, int running, int sets,
                         const kbuild_retired *retired, bool query_known, json_t **ret_array, pp_err *err);

/* spec.shardRetentionPolicy of a stack (issue 15 §1: no history becomes unreachable when the
 * count goes down): whenScaled Retain (the default) keeps a shard past the count answering its
 * history as a peer (--query-only) for retain.retentionPeriod after it stopped scraping, by
 * default spec.storage.retention.rollup (30d), when its history has expired anyway; Stop scales
 * it to 0 at once, as before. *ret_s: that period, 0 for Stop. PP_EINVAL names the field. */
int kbuild_stack_shard_retention(const json_t *spec, double *ret_s, pp_err *err);

/* spec.storage.retention of a stack (all fields optional) as the collector's flags, into args:
 * --retention-size = 85% of diskSpace (the store's budget, as before), --retention-raw (raw,
 * default 24h), --retention-raw-size (rawSize, default KBUILD_RAW_SHARE% of the budget),
 * --retention-rollup (rollup, default 30d), --retention-rollup-size (rollupSize, default
 * KBUILD_ROLLUP_SHARE% of the budget; the rest is the index's). PP_EINVAL names the field: a
 * bad duration or quantity, rollup shorter than raw, or sizes summing over the budget. */
#define KBUILD_RAW_SHARE 55
#define KBUILD_ROLLUP_SHARE 30
#define KBUILD_RAW_DEFAULT_S 86400.0
#define KBUILD_ROLLUP_DEFAULT_S (30 * 86400.0)
int kbuild_stack_retention(const json_t *storage, uint64_t disk_bytes, char args[5][64], pp_err *err);

/* spec.storage.objectStore of a stack (optional) as the collector's --object-store-* flags
 * (*ret_args, a JSON array) and its AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY taken from the
 * Secret credentialsSecret.name (keys accessKeyIdKey and secretAccessKeyKey, those two names by
 * default) by the kubelet (*ret_env, the container's env): endpoint and bucket are required,
 * prefix defaults to "<namespace>/<stack>", region and retention (a duration) are optional;
 * the names follow base/s3opts.h. Both NULL without an objectStore. PP_EINVAL names the field. */
int kbuild_stack_objstore(const json_t *storage, const char *ns, const char *stack, json_t **ret_args, json_t **ret_env,
                          pp_err *err);

/* Labels that select the collector's pods (the StatefulSet's selector and the Service's). */
json_t *kbuild_collector_selector(const char *op_name);

#endif
