/* Differential fuzz target: the fast hand-written decoder (decode_wire.c) and the protobuf-c
 * reference (decode_pbc.c) must agree on every input: both fail, or both succeed with
 * field-by-field identical profiles. Inputs are raw protobuf (no gzip), where the two differ. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/codec/pprof_int.h"
#include "../tests/unit/profile_eq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Known, intended divergences, where protobuf-c is lenient and we follow google/pprof's own
 * decoder (profile/proto.go, what go tool pprof runs), which rejects:
 *  1. a tag with field number 0, or above protobuf's maximum (2^29 - 1), or longer than 5
 *     bytes: protobuf-c truncates such tags to 32 bits (skipping or even aliasing a field);
 *     we reject them as corruption (decode_wire.c, next_field);
 *  2. a bool field (mapping 7..10, location 5) with a wire type other than varint: protobuf-c
 *     does not check the wire type of bools; google/pprof's checkType does.
 * Each is recognised from the wire decoder's error, which names the field or byte offset. */
static bool bool_wire_type(const char *msg) {
  unsigned n;
  if (sscanf(msg, "protobuf: mapping field %u has wire type", &n) == 1) return n >= 7 && n <= 10;
  if (sscanf(msg, "protobuf: location field %u has wire type", &n) == 1) return n == 5;
  return false;
}

static bool odd_tag(const uint8_t *data, size_t size, const char *msg) {
  const char *at = strstr(msg, "at byte ");
  if (!at || !strstr(msg, "field at byte")) return false;
  size_t off = strtoull(at + 8, NULL, 10);
  uint64_t v = 0;
  for (unsigned i = 0; i < 10 && off + i < size; i++) {
    v |= (uint64_t)(data[off + i] & 0x7f) << (7 * i);
    if (data[off + i] < 0x80) return i >= 5 || (v >> 3) == 0 || (v >> 3) > 0x1fffffff;
  }
  return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pprof_limits lim;
  pprof_limits_default(&lim);
  lim.max_memory = 256 << 20;
  pprof_profile *a = NULL, *b = NULL;
  pp_err ea = {0}, eb = {0};
  int ra = pprof_decode_wire(data, size, &lim, &a, &ea);
  int rb = pprof_decode_pbc(data, size, &lim, &b, &eb);
  if (ra != 0 && rb == 0 && (odd_tag(data, size, ea.msg) || bool_wire_type(ea.msg))) {
    pprof_free(b);
    return 0;
  }
  if ((ra == 0) != (rb == 0)) {
    fprintf(stderr, "decoders disagree: wire=%d (%s) protobuf-c=%d (%s)\n", ra, ra ? ea.msg : "ok",
            rb, rb ? eb.msg : "ok");
    abort();
  }
  if (ra == 0) {
    const char *why = profile_eq(a, b);
    if (why) {
      fprintf(stderr, "decoders disagree: %s\n", why);
      abort();
    }
  }
  pprof_free(a);
  pprof_free(b);
  return 0;
}
