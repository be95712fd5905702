/* version: what every binary's --version prints. The Makefile passes PP_VERSION (git describe)
 * and PP_REVISION (short commit) to the objects that include this, rebuilding them when either
 * changes (build/version.stamp); builds without git say "dev" and "unknown". */
#ifndef PP_VERSION_H
#define PP_VERSION_H

#ifndef PP_VERSION
#define PP_VERSION "dev"
#endif
#ifndef PP_REVISION
#define PP_REVISION "unknown"
#endif

#endif
