/* kqueue: the controller work queue, with client-go's guarantees.
 *
 * A key is queued at most once (adds of a queued key coalesce); a key being processed is never
 * handed out again until kq_done, and an add during processing marks it dirty so it is queued
 * once more after kq_done. kq_add_after delays an add; kq_retry delays it by the key's own
 * exponential backoff (5 ms doubling to 1000 s), which kq_forget resets after a success.
 * Keys are copied. Sized for the handful to thousands of keys an operator has: operations are
 * linear in the number of keys. Not thread-safe (the operator runs one loop).
 */
#ifndef OPERATOR_KQUEUE_H
#define OPERATOR_KQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kq kq;

kq *kq_new(void);
void kq_free(kq *q);
void kq_add(kq *q, const char *key);
void kq_add_after(kq *q, const char *key, int64_t delay_ms, int64_t now_ms);
void kq_retry(kq *q, const char *key, int64_t now_ms);
void kq_forget(kq *q, const char *key);
/* Failures since the last kq_forget (0 for an unknown key). */
unsigned kq_failures(const kq *q, const char *key);
/* The next ready key (borrowed until kq_done), or NULL. */
const char *kq_get(kq *q, int64_t now_ms);
void kq_done(kq *q, const char *key);
/* Keys queued (ready or waiting). */
size_t kq_len(const kq *q);
/* Milliseconds until a delayed key becomes ready (-1 = none waiting, 0 = one is ready). */
int64_t kq_next_ms(const kq *q, int64_t now_ms);

#endif
