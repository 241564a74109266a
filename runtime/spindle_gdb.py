# spindle_gdb.py: gdb commands for Spindle fibers, in a live process or a
# core file (needs the program's debug info).
#
#   (gdb) source runtime/spindle_gdb.py
#   (gdb) spindle fibers       every fiber of every runtime: id, name, state,
#                              what it waits on, spawn site
#   (gdb) spindle bt ID        the backtrace of a parked (or runnable) fiber,
#                              unwound from the registers its switch saved
#                              (none for a fiber that has not started)
#
# How the backtrace works: a switched-out fiber's registers sit on its own
# stack at ctx.fctx, as Boost.Context 1.74's x86_64 jump_fcontext left them
# (MXCSR/x87 CW, r12, r13, r14, r15, rbx, rbp, then the return address).
# From that rbp and return address the script follows the frame-pointer
# chain (Bazel builds keep frame pointers: -fno-omit-frame-pointer) while it
# stays inside the fiber's stack. Nothing is written, so it works on core
# files as well as on live processes. Frames of code built without frame
# pointers end the chain early.
import gdb

STATES = {1: "runnable", 2: "running", 3: "parked", 4: "waking", 5: "parked", 6: "finished"}
SLAB = 64


def runtimes():
    rt = gdb.parse_and_eval("'runtime/deadlock.c'::registry")
    while int(rt) != 0:
        yield rt
        rt = rt["registry_next"]


def fibers(rt):
    for s in range(int(rt["nfslabs"])):
        slab = rt["fslabs"][s].cast(gdb.lookup_type("struct sp_fiber").pointer())
        for i in range(SLAB):
            f = slab[i]
            if int(f["id"]) != 0:
                yield f


def text(p):
    return p.string() if int(p) != 0 else ""


def describe(f):
    st = STATES.get(int(f["pk"]) & 0xFFFFFFFF, "?")  # core.h: state | token << 32
    line = 'fiber %d "%s" %s' % (int(f["id"]), f["name"].string(), st)
    if st == "parked" and int(f["wait_what"]) != 0:
        line += ": %s %s" % (text(f["wait_what"]), f["wait_obj"])
    return line + ", spawned at %s:%d" % (text(f["file"]), int(f["line"]))


class Spindle(gdb.Command):
    """Spindle fibers: "spindle fibers", "spindle bt ID"."""

    def __init__(self):
        super().__init__("spindle", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        args = arg.split()
        if args[:1] == ["fibers"]:
            for rt in runtimes():
                print("runtime %s: %d workers" % (rt, int(rt["nworkers"])))
                for f in fibers(rt):
                    print("  " + describe(f))
        elif len(args) == 2 and args[0] == "bt":
            self.backtrace(int(args[1]))
        else:
            print("usage: spindle fibers | spindle bt ID")

    def backtrace(self, fid):
        for rt in runtimes():
            for f in fibers(rt):
                if int(f["id"]) != fid:
                    continue
                print(describe(f))
                fctx = int(f["ctx"]["fctx"])
                if fctx == 0:
                    if int(f["pk"]) & 0xFFFFFFFF == 1:  # runnable: not started (sched.c S9)
                        print("  (not started yet: no frames)")
                    else:
                        print("  (running on a worker: use that thread's own backtrace)")
                    return
                u64 = gdb.lookup_type("unsigned long").pointer()
                load = lambda a: int(gdb.Value(a).cast(u64).dereference())
                lo = int(f["stack"]["lo"])
                hi = lo + int(f["stack"]["size"])
                rbp, pc = load(fctx + 0x30), load(fctx + 0x38)
                for n in range(64):
                    sal = gdb.find_pc_line(pc)
                    block = gdb.block_for_pc(pc)
                    while block is not None and block.function is None:
                        block = block.superblock
                    name = block.function.name if block is not None else "??"
                    where = "%s:%d" % (sal.symtab.filename, sal.line) if sal.symtab else "??"
                    print("  #%d 0x%016x in %s at %s" % (n, pc, name, where))
                    if not (lo <= rbp < hi - 16):
                        break
                    rbp, pc = load(rbp), load(rbp + 8)
                    if pc == 0:
                        break
                return
        print("no fiber %d" % fid)


Spindle()
