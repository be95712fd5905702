/* Credentials, their cache and the failure limits. See web_auth.h. */
#include "web_auth.h"

#include "../base/file.h"
#include "web_int.h"

#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---- credential files ------------------------------------------------------------------------ */

/* Credential files: 64 KiB at most (a longer one is an error, not silently cut). */
static int read_small_file(const char *path, char **ret, pp_err *err) {
  size_t n;
  return pp_read_file(path, 64 << 10, (uint8_t **)ret, &n, err);
}

int web_auth_load_users(const char *path, web_auth *a, pp_err *err) {
  char *text;
  int r = read_small_file(path, &text, err);
  if (r < 0) return r;
  char *save = NULL;
  size_t line = 0;
  for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    line++;
    l[strcspn(l, "\r")] = '\0';
    if (!*l || *l == '#') continue;
    char *colon = strchr(l, ':');
    if (!colon || colon == l || colon[1] != '$') {
      free(text);
      return pp_err_set(err, PP_EINVAL, "%s:%zu: want name:hash (a crypt(3) hash such as htpasswd -B writes)", path, line);
    }
    char **nu = realloc(a->users, (a->nusers + 1) * sizeof *nu);
    if (nu) a->users = nu;
    if (!nu || !(nu[a->nusers] = strdup(l))) {
      free(text);
      return pp_err_set(err, PP_ENOMEM, "out of memory");
    }
    a->nusers++;
  }
  free(text);
  if (!a->nusers) return pp_err_set(err, PP_EINVAL, "%s: no users", path);
  return 0;
}

int web_auth_load_token(const char *path, web_auth *a, pp_err *err) {
  char *text;
  int r = read_small_file(path, &text, err);
  if (r < 0) return r;
  text[strcspn(text, "\r\n")] = '\0';
  if (strlen(text) < 16) {
    free(text);
    return pp_err_set(err, PP_EINVAL, "%s: the token must be at least 16 characters", path);
  }
  a->token = text;
  return 0;
}

bool web_auth_enabled(const web_auth *a) { return a && (a->nusers || a->token); }

/* ---- checking -------------------------------------------------------------------------------- */

/* SipHash-2-4: a keyed hash, so a remembered credential is useless without the process's random
 * key (two of them give the 128 bits a cache entry keeps). */
static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
#define SIPROUND                                                                                      \
  do {                                                                                                \
    v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32), v2 += v3, v3 = rotl(v3, 16), v3 ^= v2; \
    v0 += v3, v3 = rotl(v3, 21), v3 ^= v0, v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);  \
  } while (0)
static uint64_t siphash(const uint64_t key[2], const unsigned char *m, size_t n) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, m + i, 8);
    v3 ^= w;
    SIPROUND;
    SIPROUND;
    v0 ^= w;
  }
  uint64_t last = (uint64_t)n << 56;
  for (size_t k = 0; i + k < n; k++) last |= (uint64_t)m[i + k] << (8 * k);
  v3 ^= last;
  SIPROUND;
  SIPROUND;
  v0 ^= last;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

typedef struct cred {
  uint64_t h[2];   /* keyed hash of "user\0pass" */
  int64_t expires; /* monotonic ns; 0 = empty */
} cred;

typedef struct bucket {
  char addr[48];  /* "" = empty */
  double tokens;  /* attempts left */
  int64_t last;   /* when tokens was last brought up to date */
} bucket;

struct web_auth_state {
  const web_auth *cfg;
  uint64_t key[4];
  pthread_mutex_t mu;
  cred creds[WEB_AUTH_CACHE_ENTRIES];
  bucket buckets[WEB_AUTH_ADDRESSES];
  web_auth_counts counts;
};

web_auth_state *web_auth_state_new(const web_auth *cfg) {
  web_auth_state *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->cfg = cfg;
  if (getrandom(s->key, sizeof s->key, 0) != (ssize_t)sizeof s->key) {
    /* no entropy source: the clock and the address of this state are all there is */
    s->key[0] = (uint64_t)pp_clock_mono_ns() ^ (uint64_t)(uintptr_t)s;
    s->key[1] = rotl(s->key[0], 29) ^ 0x9e3779b97f4a7c15ULL;
    s->key[2] = s->key[0] * 0xff51afd7ed558ccdULL, s->key[3] = s->key[1] * 0xc4ceb9fe1a85ec53ULL;
  }
  pthread_mutex_init(&s->mu, NULL);
  return s;
}

void web_auth_state_free(web_auth_state *s) {
  if (!s) return;
  pthread_mutex_destroy(&s->mu);
  memset(s, 0, sizeof *s);
  free(s);
}

static void cred_hash(const web_auth_state *s, const char *user, const char *pass, uint64_t ret[2]) {
  size_t ul = strlen(user), pl = strlen(pass);
  unsigned char *m = malloc(ul + pl + 1);
  if (!m) {
    ret[0] = ret[1] = 0;
    return;
  }
  memcpy(m, user, ul);
  m[ul] = 0;
  memcpy(m + ul + 1, pass, pl);
  ret[0] = siphash(s->key, m, ul + pl + 1);
  ret[1] = siphash(s->key + 2, m, ul + pl + 1);
  explicit_bzero(m, ul + pl + 1);
  free(m);
}

/* The address's bucket, brought up to date (mu held); the oldest is reused for a new address. */
static bucket *bucket_for(web_auth_state *s, const char *addr, int64_t now) {
  uint64_t h = siphash(s->key, (const unsigned char *)addr, strlen(addr));
  bucket *oldest = NULL;
  for (size_t k = 0; k < 8; k++) {
    bucket *b = &s->buckets[(h + k) % WEB_AUTH_ADDRESSES];
    if (!strcmp(b->addr, addr)) {
      b->tokens += (double)(now - b->last) / (WEB_AUTH_REFILL_SECONDS * 1e9);
      if (b->tokens > WEB_AUTH_BURST) b->tokens = WEB_AUTH_BURST;
      b->last = now;
      return b;
    }
    if (!oldest || !b->addr[0] || (oldest->addr[0] && b->last < oldest->last)) oldest = b;
  }
  snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
  oldest->tokens = WEB_AUTH_BURST;
  oldest->last = now;
  return oldest;
}

/* Comparison whose time does not depend on where the strings differ. */
static bool same(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  unsigned char d = (unsigned char)(la != lb);
  for (size_t i = 0; i < la; i++) d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
  return d == 0;
}

/* The user's "name:hash" line's hash, or NULL. */
static const char *hash_of(const web_auth *a, const char *user) {
  size_t ul = strlen(user);
  for (size_t i = 0; i < a->nusers; i++)
    if (!strncmp(a->users[i], user, ul) && a->users[i][ul] == ':') return a->users[i] + ul + 1;
  return NULL;
}

/* A failure or an attempt to verify takes a token; none left is WEB_AUTH_LIMITED (mu held). */
static bool take_token(web_auth_state *s, const char *addr, int64_t now, unsigned *ret_retry) {
  bucket *b = bucket_for(s, addr, now);
  if (b->tokens >= 1) {
    b->tokens -= 1;
    return true;
  }
  double wait = (1 - b->tokens) * WEB_AUTH_REFILL_SECONDS;
  if (ret_retry) *ret_retry = (unsigned)wait + 1;
  s->counts.limited++;
  return false;
}

web_auth_result web_auth_check(web_auth_state *s, const char *header, const char *user, const char *pass,
                               const char *addr, unsigned *ret_retry_after) {
  const web_auth *a = s->cfg;
  if (!web_auth_enabled(a)) return WEB_AUTH_OK;
  int64_t now = pp_clock_mono_ns();
  web_auth_result r = WEB_AUTH_DENIED;
  uint64_t h[2] = {0, 0};
  bool basic = header && a->nusers && !strncmp(header, "Basic ", 6) && user && pass;
  if (basic) cred_hash(s, user, pass, h);
  pthread_mutex_lock(&s->mu);
  if (header && a->token && !strncmp(header, "Bearer ", 7)) {
    r = same(header + 7, a->token) ? WEB_AUTH_OK : WEB_AUTH_DENIED;
    if (r == WEB_AUTH_DENIED && !take_token(s, addr, now, ret_retry_after)) r = WEB_AUTH_LIMITED;
  } else if (basic) {
    for (size_t i = 0; i < WEB_AUTH_CACHE_ENTRIES && r != WEB_AUTH_OK; i++) {
      cred *c = &s->creds[i];
      if (c->expires > now && c->h[0] == h[0] && c->h[1] == h[1]) r = WEB_AUTH_OK;
    }
    if (r == WEB_AUTH_OK) s->counts.cache_hits++;
    else if (!take_token(s, addr, now, ret_retry_after)) r = WEB_AUTH_LIMITED;
    else if (hash_of(a, user)) r = WEB_AUTH_VERIFY; /* the token comes back if it verifies */
  } else if (header && !take_token(s, addr, now, ret_retry_after)) {
    r = WEB_AUTH_LIMITED;
  }
  if (r == WEB_AUTH_DENIED) s->counts.failures++;
  pthread_mutex_unlock(&s->mu);
  return r;
}

web_auth_result web_auth_verify(web_auth_state *s, const char *user, const char *pass, const char *addr) {
  const char *hash = hash_of(s->cfg, user);
  bool ok = false;
  if (hash) {
    struct crypt_data *cd = calloc(1, sizeof *cd); /* ~32 KiB: not on the stack */
    const char *got = cd ? crypt_r(pass, hash, cd) : NULL;
    ok = got && got[0] == '$' && same(got, hash);
    if (cd) explicit_bzero(cd, sizeof *cd);
    free(cd);
  }
  uint64_t h[2];
  if (ok) cred_hash(s, user, pass, h);
  int64_t now = pp_clock_mono_ns();
  pthread_mutex_lock(&s->mu);
  s->counts.verifications += hash != NULL;
  if (ok) {
    /* remembered in the free or the soonest-expiring slot; the address gets its token back */
    cred *slot = &s->creds[0];
    for (size_t i = 0; i < WEB_AUTH_CACHE_ENTRIES; i++)
      if (s->creds[i].expires < slot->expires) slot = &s->creds[i];
    slot->h[0] = h[0], slot->h[1] = h[1];
    slot->expires = now + (int64_t)WEB_AUTH_CACHE_SECONDS * 1000000000;
    bucket *b = bucket_for(s, addr, now);
    if (b->tokens + 1 <= WEB_AUTH_BURST) b->tokens += 1;
  } else {
    s->counts.failures++;
  }
  pthread_mutex_unlock(&s->mu);
  return ok ? WEB_AUTH_OK : WEB_AUTH_DENIED;
}

void web_auth_get_counts(web_auth_state *s, web_auth_counts *ret) {
  pthread_mutex_lock(&s->mu);
  *ret = s->counts;
  pthread_mutex_unlock(&s->mu);
}
