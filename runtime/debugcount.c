/*
 * debugcount.c: the number of debug-mode runtimes alive in the process
 * (park.h sp__debug_any). A library of its own so that the test build with
 * tiny run queues (//runtime:runtime_smallq) and the normal one share one
 * definition.
 */
/* Public (sp_sync.h: the inline mutex fast paths read it), hence the sp_
 * name; not for users. */
int sp_debug_runtimes_;
/* The number of virtual-time runtimes alive (sp_now looks only then). */
int sp__nvirtual;
