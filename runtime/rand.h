/*
 * rand.h: a cheap per-thread random number for scheduling decisions (steal
 * victims, select's choice among ready cases). Shared-internal. Not for
 * anything that needs unpredictability.
 */
#ifndef SP_RUNTIME_RAND_H
#define SP_RUNTIME_RAND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Uniform 32-bit value from the calling worker's (or thread's) xorshift
 * state. Runs on: any thread. Switches: no. */
uint32_t sp__rand32(void);

#ifdef __cplusplus
}
#endif
#endif /* SP_RUNTIME_RAND_H */
