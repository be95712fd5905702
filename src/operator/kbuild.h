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
#include <stdint.h>

#include "../base/pp_err.h"

typedef struct kbuild_target {
  const char *namespace_, *service, *pod, *node, *monitor; /* monitor: the PprofMonitor's name */
  const char *scheme;                                      /* "http" or "https" */
  const char *ip;                                          /* IPv4 or IPv6 address */
  int port;
  const char *path;     /* prefix before /debug/pprof, or NULL */
  const json_t *config; /* PprofMonitor spec.config ({profile: {seconds: N}, heap: ...}) or NULL */
  double interval_seconds, timeout_seconds; /* 0 = unset */
} kbuild_target;

int kbuild_config_yaml(const kbuild_target *t, size_t n, char **ret_yaml, pp_err *err);

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
 * --data-dir, --web-port 8989, --retention-size = 85% of diskSpace, probes on /readyz and
 * /healthz, restricted securityContext, non-root; the reloader sidecar only when
 * spec.reloaderImage is set). Each carries an ownerReference to the stack (controller=true) and
 * the labels app.kubernetes.io/{name,instance,managed-by}. PP_EINVAL names the bad field. */
int kbuild_stack_objects(const json_t *stack, const char *op_name, json_t **ret_array, pp_err *err);

/* Labels that select the collector's pods (the StatefulSet's selector and the Service's). */
json_t *kbuild_collector_selector(const char *op_name);

#endif
