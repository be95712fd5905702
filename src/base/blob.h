/* blob: files compiled into a binary (the collector's web UI, the operator's CRDs).
 *
 * tools/embed.py turns a list of files into a C table `const pp_blob NAME[]` at build time,
 * one entry per file (its base name, a content type by extension, the bytes), ended by an
 * entry whose name is NULL. The program that embeds a table declares it where it uses it with
 * PP_BLOB_TABLE(NAME). The data is static and read-only: nothing to free, thread-safe.
 */
#ifndef PP_BLOB_H
#define PP_BLOB_H

#include <stddef.h>

typedef struct pp_blob {
  const char *name;         /* file name, e.g. "app.js" */
  const char *content_type; /* by extension, e.g. "text/javascript; charset=utf-8" */
  const unsigned char *data;
  size_t len;
} pp_blob;

#define PP_BLOB_TABLE(name) extern const pp_blob name[]

/* The entry called name in table, or NULL. */
const pp_blob *pp_blob_find(const pp_blob *table, const char *name);

#endif
