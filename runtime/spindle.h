/*
 * spindle.h: the one header users include. Spindle gives C programs Go's
 * model: stackful fibers in blocking style, run M:N over worker threads.
 */
#ifndef SPINDLE_H
#define SPINDLE_H

#include "runtime/sp_runtime.h"
#include "sync/sp_sync.h"
#include "sync/sp_ctx.h"
#include "sync/sp_time.h"
#include "sync/sp_group.h"
#include "sync/sp_breaker.h"
#include "sync/sp_ratelimit.h"
#include "sync/sp_retry.h"
#include "sync/sp_pool.h"
#include "io/sp_io.h"

#endif /* SPINDLE_H */
