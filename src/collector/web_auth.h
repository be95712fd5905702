/* web_auth: who may use the UI and API (off unless configured; /healthz and /readyz always open).
 *
 * Credentials: "name:hash" lines as htpasswd -B writes them (any crypt(3) hash libxcrypt knows:
 * bcrypt $2b$/$2y$, sha512 $6$, yescrypt $y$) and/or one bearer token.
 *
 * Checking is split so the server's threads never hash a password: web_auth_check answers at
 * once from what is known (a bearer token, compared in constant time; Basic credentials
 * verified in the last WEB_AUTH_CACHE_SECONDS, remembered as a keyed 128-bit hash, never the
 * password itself; an unknown user), and says WEB_AUTH_VERIFY when crypt(3) must run, which
 * web_auth_verify then does on a worker. bcrypt costs tens of milliseconds by design; before,
 * every request paid it, also every wrong guess.
 *
 * Failures are rate-limited per client address: a bucket of WEB_AUTH_BURST attempts refilled
 * one per WEB_AUTH_REFILL_SECONDS. An attempt that needs verifying takes a token up front (a
 * success gives it back), so a flood of guesses costs at most the burst in hashing; with the
 * bucket empty, attempts from that address get WEB_AUTH_LIMITED (429 with Retry-After) until
 * it refills. Cached credentials pass whatever the bucket says, so a guesser sharing an address
 * (port-forwards all come from 127.0.0.1) does not lock out a signed-in user.
 *
 * Threads: web_auth_check and web_auth_verify are safe from any thread (one mutex, never held
 * while hashing). The loaders are for start-up.
 */
#ifndef COLLECTOR_WEB_AUTH_H
#define COLLECTOR_WEB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pp_err.h"

#define WEB_AUTH_CACHE_SECONDS 60
#define WEB_AUTH_CACHE_ENTRIES 256
#define WEB_AUTH_BURST 5
#define WEB_AUTH_REFILL_SECONDS 2
#define WEB_AUTH_ADDRESSES 1024 /* addresses whose failures are remembered (oldest forgotten) */

/* The configured credentials (off when both are empty). */
typedef struct web_auth {
  char **users; /* "name:hash" */
  size_t nusers;
  char *token;
} web_auth;

/* Reads a users file (PP_EINVAL naming the bad line) or a token file (at least 16 characters)
 * into *auth; files over 64 KiB are PP_ELIMIT. */
int web_auth_load_users(const char *path, web_auth *auth, pp_err *err);
int web_auth_load_token(const char *path, web_auth *auth, pp_err *err);
bool web_auth_enabled(const web_auth *auth);

typedef struct web_auth_state web_auth_state;

/* State for checking against *cfg (which must outlive it). NULL on out of memory. */
web_auth_state *web_auth_state_new(const web_auth *cfg);
void web_auth_state_free(web_auth_state *s);

typedef enum web_auth_result {
  WEB_AUTH_OK,      /* let it in */
  WEB_AUTH_DENIED,  /* 401 */
  WEB_AUTH_LIMITED, /* 429: too many failures from this address */
  WEB_AUTH_VERIFY,  /* run web_auth_verify (slow) with the same arguments */
} web_auth_result;

/* The fast check. header: the Authorization header (NULL if absent); user/pass: the decoded
 * Basic credentials (NULL if none); addr: the client's address as text. On WEB_AUTH_LIMITED,
 * *ret_retry_after is the seconds until another attempt is allowed. */
web_auth_result web_auth_check(web_auth_state *s, const char *header, const char *user, const char *pass,
                               const char *addr, unsigned *ret_retry_after);
/* The slow check after WEB_AUTH_VERIFY: crypt(3) against the user's hash; WEB_AUTH_OK
 * (remembered) or WEB_AUTH_DENIED. */
web_auth_result web_auth_verify(web_auth_state *s, const char *user, const char *pass, const char *addr);

typedef struct web_auth_counts {
  uint64_t verifications; /* password hashes computed */
  uint64_t failures;      /* attempts denied */
  uint64_t limited;       /* attempts refused by the rate limit */
  uint64_t cache_hits;    /* Basic credentials accepted without hashing */
} web_auth_counts;
void web_auth_get_counts(web_auth_state *s, web_auth_counts *ret);

#endif
