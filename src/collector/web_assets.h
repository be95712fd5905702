/* web_assets: the UI's files (src/collector/ui), compiled into the binary by tools/embed.py.
 *
 * The UI is one page that routes on the path: the page's own paths (/, /targets, /explorer,
 * /compare, /dashboard) are index.html, and /ui/NAME is the file NAME. Nothing is read from
 * disk, so no path can reach outside the table. Static data: thread-safe, nothing to free.
 */
#ifndef COLLECTOR_WEB_ASSETS_H
#define COLLECTOR_WEB_ASSETS_H

#include "../base/blob.h"

/* The file served at url, or NULL when url is not one of the UI's. */
const pp_blob *web_assets_find(const char *url);

#endif
