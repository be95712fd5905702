/* s3opts: what an S3-compatible object store's endpoint, bucket, prefix and region may be, one
 * set of rules for the collector's --object-store-* flags (collector/upload.h) and the operator's
 * spec.storage.objectStore (operator/kbuild.h), so the operator never writes flags the collector
 * would refuse.
 *
 *   endpoint  http://host[:port] or https://host[:port], no path (trailing slashes aside),
 *             query or user (path-style requests are made under it), up to 512 bytes
 *   bucket    S3's rules: 3..63 of [a-z0-9.-], not starting or ending with '.' or '-'
 *   prefix    NULL/"" or up to 512 bytes of non-empty [A-Za-z0-9._-] parts joined by '/',
 *             none starting with '.' (so no "." or ".."), not starting with '/' (an optional
 *             trailing '/')
 *   region    NULL or 1..64 of [a-z0-9-]
 * pp_s3_check fails with PP_EINVAL naming the first bad field ("object store bucket: ..."). */
#ifndef BASE_S3OPTS_H
#define BASE_S3OPTS_H

#include "pp_err.h"

/* the longest retention of objects either side accepts (100 years: past it, ns overflow int64) */
#define PP_S3_RETENTION_MAX_S (100 * 365.25 * 86400)

int pp_s3_check(const char *endpoint, const char *bucket, const char *prefix, const char *region, pp_err *err);

#endif
