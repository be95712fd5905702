/* ksel: Kubernetes label selectors (metav1.LabelSelector) and the PprofMonitor endpoint port
 * rules, as pure functions over jansson values, for the operator's reconcilers.
 *
 * Selectors: matchLabels AND every matchExpressions entry (In, NotIn, Exists, DoesNotExist);
 * an empty or absent selector selects everything (Prometheus Operator semantics). Parsing
 * validates operators and value lists and fails with PP_EINVAL and a message naming the
 * offending entry; limits: 64 labels, 64 expressions, 256 values per expression.
 * Ownership: a ksel owns copies of what it needs; ksel_free releases it. Thread-safe once built.
 */
#ifndef OPERATOR_KSEL_H
#define OPERATOR_KSEL_H

#include <jansson.h>
#include <stdbool.h>

#include "../base/pp_err.h"

typedef struct ksel ksel;

/* Parses a LabelSelector object (NULL or JSON null = select everything). */
int ksel_parse(const json_t *selector, ksel **ret, pp_err *err);
void ksel_free(ksel *s);

/* True when the labels object (string values) satisfies the selector. NULL labels = none. */
bool ksel_matches(const ksel *s, const json_t *labels);

/* The port of one endpoint (EndpointSlice) address to scrape for a PprofMonitor endpoint spec.
 *  - spec.port: a Service port *name*; its targetPort is looked up in the slice's ports.
 *  - spec.targetPort: a container port number or name, matched against the slice's ports
 *    (number or name); as the seed did, it may also name or number a *Service* port, which is
 *    then followed to its targetPort.
 * service: the Service object; slice_ports: the EndpointSlice's `ports` array.
 * Returns the port (1..65535) or PP_EUSAGE with a message saying what did not match. */
int ksel_resolve_port(const json_t *endpoint_spec, const json_t *service, const json_t *slice_ports,
                      pp_err *err);

#endif
