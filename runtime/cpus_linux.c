/*
 * cpus_linux.c: how many CPUs this process may use: the affinity mask,
 * capped by the tightest cgroup CPU quota on the path from the process's
 * cgroup to the root (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us /
 * cpu.cfs_period_us). A quota of 1.5 CPUs gives 2 workers (rounded up, as
 * Go 1.25+ and the JVM do), never fewer than 1.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core.h"

/* Reads "quota period" (v2) or two files (v1) under dir; returns the CPU
 * limit rounded up, or 0 when unlimited or unreadable. */
static int quota_at(const char *dir, int v2) {
  char path[8400];
  long long q = -1, p = 0;
  if (v2) {
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char qs[32];
    if (fscanf(f, "%31s %lld", qs, &p) == 2 && strcmp(qs, "max") != 0) q = atoll(qs);
    fclose(f);
  } else {
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    if (fscanf(f, "%lld", &q) != 1) q = -1;
    fclose(f);
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    f = fopen(path, "r");
    if (!f) return 0;
    if (fscanf(f, "%lld", &p) != 1) p = 0;
    fclose(f);
  }
  if (q <= 0 || p <= 0) return 0;
  return (int)((q + p - 1) / p);
}

/* Smallest quota from the process's cgroup up to the mount root. */
static int cgroup_limit(void) {
  FILE *f = fopen("/proc/self/cgroup", "r");
  if (!f) return 0;
  char line[4096], rel[4096] = "";
  int v2 = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    if (strncmp(line, "0::", 3) == 0) { v2 = 1; snprintf(rel, sizeof rel, "%s", c2 + 1); }
    else if (strstr(c1, "cpu,") || strstr(c1, ":cpu:") || strstr(c1, ",cpu:")) {
      v2 = 0; snprintf(rel, sizeof rel, "%s", c2 + 1); break;
    }
  }
  fclose(f);
  if (!rel[0]) return 0;
  const char *root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/cpu";
  int best = 0;
  for (;;) {
    char dir[8192];
    snprintf(dir, sizeof dir, "%s%s", root, strcmp(rel, "/") == 0 ? "" : rel);
    int q = quota_at(dir, v2);
    if (q > 0 && (best == 0 || q < best)) best = q;
    char *slash = strrchr(rel, '/');
    if (!slash || slash == rel) {
      if (strcmp(rel, "/") == 0) break;
      strcpy(rel, "/");
      continue;
    }
    *slash = '\0';
  }
  return best;
}

int sp__cpu_count(void) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = 1;
  int q = cgroup_limit();
  if (q > 0 && q < n) n = q;
  return n;
}
