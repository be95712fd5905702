/* web_otlp: OpenTelemetry's OTLP profiles pushed to the collector (issue 16 §3), stored like
 * scraped and pushed profiles (web_push_store).
 *
 *   POST /v1development/profiles   OTLP/HTTP: the body an ExportProfilesServiceRequest
 *        (opentelemetry-proto v1.10, profiles v1development) as application/x-protobuf or
 *        application/json (OTLP's JSON: lowerCamelCase names, 64-bit integers as strings or
 *        numbers), identity or gzip encoded, at most WEB_MAX_PUSH_BODY after gunzip. The header
 *        OTLP-Profiles-Development-Version, when there, must be 1 (that schema; else 400).
 *
 * What is stored: the profiles of one scope that share time, duration, period type, period and
 * attributes, one sample type each (a pprof of N types arrives as N profiles over the same
 * stacks), become one pprof with those sample types, in their order; then records as
 * web_push_store makes them from its sample types (cpu, heap, goroutine, ...). In that pprof:
 *   - samples: one per (stack, set of attributes) of the group (link ignored), its value per
 *     type the sum of the sample's `values` (none: the count of its timestamps);
 *   - stacks, locations (address, mapping, lines: function, line, column), functions (name,
 *     system name, file, start line) and mappings (start, limit, offset, file; the build id from
 *     the mapping's attribute process.executable.build_id.{go,gnu,htlhash}) are the ones the
 *     samples use (mappings in the dictionary's order: the first is go tool pprof's main
 *     binary); OTLP has no has_* flags, so a mapping whose frames name functions has
 *     has_functions, the others none (as Go's runtime/pprof writes them);
 *   - sample attributes become pprof labels: strings (inline or from the string table) as
 *     text labels, integers as numeric labels with the attribute's unit, booleans and doubles
 *     as text; arrays, maps and bytes are left out;
 *   - time_nanos and duration_nanos the profile's, period type and period the profile's.
 * A profile that says original_payload_format "pprof" with its original_payload is stored
 * from those bytes instead (the pprof the producer converted from, lossless).
 * Labels: the resource's attributes with scalar values, names with each character outside
 * [A-Za-z0-9_] made '_' (service.name -> service_name, as Pyroscope names it), at most
 * WEB_PUSH_MAX_LABELS of them in their order; `service_name` (absent: "unknown_service") is
 * the app web_push_store files it under. A contentions/delay profile (Go's mutex and block
 * profiles have the same sample types) is stored when a profile or resource attribute
 * `pprof.profile.kind` says "mutex" or "block"; else it is rejected (below).
 *
 * Answers (OTLP/HTTP): 200 with an ExportProfilesServiceResponse in the request's encoding,
 * with partial_success {rejected_profiles, error_message} when some profiles were not stored
 * for what they hold (a type the collector does not know, a contentions profile of unknown
 * kind, or one that needs more memory to convert than the request may take). A request that is
 * malformed (not the message, an index out of its table, a stack naming location 0,
 * string_table[0] not "") or over a limit of the message (WEB_OTLP_MAX_PROFILES profiles,
 * WEB_OTLP_MAX_SAMPLES samples, WEB_OTLP_MAX_WORK, nesting) stores nothing and gets 400; a body
 * over WEB_MAX_PUSH_BODY (web.c), or one that needs more memory to decode than the request may
 * take, 413; a stopping collector 503, a full disk 507, with what was stored before the failing
 * group kept (a retry may store it again, as a push's would): all with a google.rpc.Status body in
 * the request's encoding. Authentication and the limits on bodies in flight are the pushes'
 * (web.c).
 * Threads: runs on web_work's workers.
 */
#ifndef COLLECTOR_WEB_OTLP_H
#define COLLECTOR_WEB_OTLP_H

#include "web_int.h"
#include "web_push.h"

#define WEB_OTLP_PATH "/v1development/profiles"
/* OTLP profiles (one sample type each) in one request */
#define WEB_OTLP_MAX_PROFILES 1024
/* samples in one request, all profiles together */
#define WEB_OTLP_MAX_SAMPLES ((size_t)4 << 20)
/* what converting one request may walk: per sample, its stack's frames and their lines (a stack
 * of a thousand frames in a thousand groups is a million), checked before anything is stored */
#define WEB_OTLP_MAX_WORK ((uint64_t)64 << 20)

void web_otlp_profiles(const web_ctx *x, const web_push_body *b, web_resp *out);

#endif
