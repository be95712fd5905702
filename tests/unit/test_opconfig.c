/* Unit tests of how the operator digests the collector-config ConfigMap it reads back
 * (op_digest_config, src/operator/op_monitor.c): plain YAML in data, or gzipped into
 * binaryData; a digest that cannot be made (not base64, corrupt gzip, a NUL in the text) must
 * never equal a wanted one, so the ConfigMap is rewritten. Expected values are relations
 * between digests and the fixed "unreadable" mark, not digests computed here. */
#include <stdio.h>

#include "../../src/base/b64.h"
#include "../../src/base/gz.h"
#include "../../src/operator/op_int.h"
#include "tt.h"

/* The digest op_digest_config leaves in data["config.yaml"] (malloc'd), and whether
 * binaryData["config.yaml"] is gone afterwards. */
static char *digest_of(json_t *cm, bool *ret_bin_gone) {
  op_digest_config(cm);
  const char *d = json_string_value(json_object_get(json_object_get(cm, "data"), "config.yaml"));
  if (ret_bin_gone) *ret_bin_gone = !json_object_get(json_object_get(cm, "binaryData"), "config.yaml");
  char *r = d ? strdup(d) : NULL;
  json_decref(cm);
  return r;
}

static char *plain(const char *yaml) {
  return digest_of(json_pack("{s:{s:s}}", "data", "config.yaml", yaml), NULL);
}

/* bytes -> [gzip] -> base64 -> binaryData */
static char *binary(const void *bytes, size_t len, bool gzip, bool *ret_bin_gone) {
  uint8_t *gz = NULL;
  size_t gzlen = 0;
  char *b64 = NULL;
  size_t blen = 0;
  pp_err err = {0};
  if (gzip && pp_gzip(bytes, len, 6, &gz, &gzlen, &err) < 0) return NULL;
  if (pp_b64_encode(gzip ? gz : bytes, gzip ? gzlen : len, &b64, &blen, &err) < 0) {
    free(gz);
    return NULL;
  }
  char *d = digest_of(json_pack("{s:{s:s}}", "binaryData", "config.yaml", b64), ret_bin_gone);
  free(gz);
  free(b64);
  return d;
}

static void gzipped_config_digests_as_its_yaml(void) {
  const char *y1 = "monitors:\n- name: a\n  endpoint: http://10.0.0.1:6060\n";
  const char *y2 = "monitors:\n- name: b\n  endpoint: http://10.0.0.1:6060\n";
  char *p1 = plain(y1), *p2 = plain(y2);
  bool gone = false;
  char *g1 = binary(y1, strlen(y1), true, &gone), *g2 = binary(y2, strlen(y2), true, NULL);
  CHECK(p1 && p2 && g1 && g2);
  if (p1 && p2 && g1 && g2) {
    CHECK(strcmp(p1, p2) != 0);
    /* the same YAML gzipped: the same digest, marked as the gzipped form */
    CHECK(!strncmp(g1, "gz:", 3) && !strcmp(g1 + 3, p1));
    CHECK(!strncmp(g2, "gz:", 3) && !strcmp(g2 + 3, p2));
    CHECK(strcmp(g1, p1) != 0); /* a change of form is a change */
  }
  CHECK(gone); /* the cache keeps the digest, not the bytes */
  free(p1);
  free(p2);
  free(g1);
  free(g2);
}

static void unreadable_binary_config_is_never_current(void) {
  static const char unreadable[] = "digest:unreadable";
  bool gone = false;
  /* not base64 */
  char *d = digest_of(json_pack("{s:{s:s}}", "binaryData", "config.yaml", "!!not base64!!"), &gone);
  CHECK_STR(d, unreadable);
  CHECK(gone);
  free(d);
  /* base64 of a corrupt gzip stream */
  d = binary("\x1f\x8b\x08\x00garbage", 12, false, NULL);
  CHECK_STR(d, unreadable);
  free(d);
  /* valid gzip, but the text holds a NUL (it could not be the YAML digested) */
  d = binary("monitors: []\n\0tail", 18, true, NULL);
  CHECK_STR(d, unreadable);
  free(d);
  /* past the collector's limit once inflated (64 MiB): what the collector would refuse */
  size_t big = ((size_t)64 << 20) + 1;
  char *spaces = malloc(big);
  if (spaces) memset(spaces, ' ', big);
  d = spaces ? binary(spaces, big, true, NULL) : NULL;
  CHECK_STR(d, unreadable);
  free(d);
  free(spaces);
}

int main(void) {
  RUN(gzipped_config_digests_as_its_yaml);
  RUN(unreadable_binary_config_is_never_current);
  return tt_finish();
}
