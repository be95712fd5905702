/* scrapeval: the rules one scrape setting must follow, in one place for the two programs that
 * handle them. The collector checks its config.yaml with them (collector/config.c) and the
 * operator checks every PprofMonitor and target with them before it writes that config
 * (operator/kbuild.c), so a monitor the collector would refuse is left out on its own instead
 * of making the collector refuse the whole file, everyone's targets included.
 *
 * Each check returns 0, or PP_EINVAL with a message naming the value and the rule (callers
 * prefix where the value came from: "FILE:LINE:COL: monitors[3].path: ..." or
 * "spec.endpoint.path: ..."). Pure functions; thread-safe.
 */
#ifndef PP_SCRAPEVAL_H
#define PP_SCRAPEVAL_H

#include <stdbool.h>

#include "pp_err.h"

#define SV_MAX_SECONDS 3600         /* seconds= of a CPU or delta profile: an hour */
#define SV_MIN_INTERVAL_SECONDS 0.001 /* interval_seconds and timeout_seconds: 1 ms .. a day */
#define SV_MAX_INTERVAL_SECONDS 86400
#define SV_MAX_URL_LEN 1024         /* an endpoint, or a path */
#define SV_MAX_NAME_LEN 253         /* a monitor's name */

/* scheme://host:port[/prefix]: http or https, a host, at most SV_MAX_URL_LEN bytes, no whitespace,
 * control characters, `?` or `#` (the collector appends the path and the query). */
int sv_check_endpoint(const char *url, pp_err *err);
/* A path such as /debug/pprof or a prefix such as /internal: starts with `/`, at most
 * SV_MAX_URL_LEN bytes, no whitespace, control characters, `?` or `#`. */
int sv_check_path(const char *path, pp_err *err);
/* seconds= of a profile: a whole number in 1..SV_MAX_SECONDS for CPU, 0..SV_MAX_SECONDS for
 * the others (0 = a snapshot, more = a delta over that many seconds). */
int sv_check_seconds(bool cpu, double seconds, pp_err *err);
/* interval_seconds and timeout_seconds: SV_MIN_INTERVAL_SECONDS..SV_MAX_INTERVAL_SECONDS. */
int sv_check_interval(double seconds, pp_err *err);
int sv_check_timeout(double seconds, pp_err *err);
/* A monitor's name: 1..SV_MAX_NAME_LEN bytes, no control characters. */
int sv_check_name(const char *name, pp_err *err);

/* Shards (issue 15 §1): a target belongs to shard sv_shard_of(endpoint, shards), as Prometheus
 * Operator's hashmod does it: a hash of the target's address (the endpoint's host:port, what
 * lies between "://" and the next '/', so the scheme and the path do not move it) modulo the
 * shard count. The hash is 64-bit FNV-1a: stable across versions and machines, since the
 * collector and the operator must agree on it. shards <= 1: 0. */
#define SV_MAX_SHARDS 1000
unsigned sv_shard_of(const char *endpoint, unsigned shards);

#endif
