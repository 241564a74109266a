/*
 * bench_util.h: helpers shared by the C benchmarks: --key=value flags, a
 * monotonic clock, resident set size, and the RESULT line format.
 *
 * Every benchmark prints one line per measurement on stdout:
 *   RESULT name=<bench> impl=spindle workers=<n> value=<v> unit=<unit>
 * which scripts/bench parses; the Go twins in bench/go/ print the same with
 * impl=go. Anything else a benchmark has to say goes to stderr.
 */
#ifndef SP_BENCH_UTIL_H
#define SP_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Rejects any argument that is not --<name>=<value> with a name in
 * `known` (NULL-terminated); prints usage and exits 2 on a bad one. */
void bu_check_flags(int argc, char **argv, const char *const *known);

/* The integer value of --<name>=<value>, or def when absent. Accepts
 * suffixes k (10^3) and M (10^6). Exits 2 on a malformed number. */
int64_t bu_flag(int argc, char **argv, const char *name, int64_t def);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bu_now_ns(void);

/* Resident set size of this process in bytes (/proc/self/statm). */
int64_t bu_rss_bytes(void);

/* Prints a RESULT line (impl=spindle) and flushes stdout. */
void bu_result(const char *name, int workers, double value, const char *unit);

struct sp_runtime;
struct sp_stats;
/* A runtime with `workers` workers; exits 1 if it cannot be created.
 * _stack: with that default stack size for its fibers (0: Spindle's). */
struct sp_runtime *bu_runtime(int workers);
struct sp_runtime *bu_runtime_stack(int workers, size_t stack_size);

/* Runs fn(arg) as a fiber of rt and waits for it; exits 1 on an error.
 * (Benchmarks time inside such a driver fiber, so spawning from a foreign
 * thread is not part of what they measure.) */
void bu_run_fiber(struct sp_runtime *rt, void *(*fn)(void *), void *arg);
/* With BU_STATS=1 in the environment, bu_stats_end prints the runtime's
 * counters (switches, parks, steals, wake-ups, spawns) accumulated since
 * bu_stats_begin to stderr; bu_run_fiber does it for each run. */
void bu_stats_begin(struct sp_runtime *rt, struct sp_stats *s0);
void bu_stats_end(struct sp_runtime *rt, const struct sp_stats *s0);

/* Prints "bench: <what>: <text for rc>" on stderr and exits 1. */
__attribute__((noreturn)) void bu_die(const char *what, int rc);

#endif /* SP_BENCH_UTIL_H */
