# The sanitizers' run-time options for glint's instrumented tree (build-fuzz/):
# sourced by scripts/test.sh --sanitize and --sanitize=fast; source it too
# before running a tool of that tree by hand. Each option says why; none
# hides a report. Leak detection stays on (ASan's default on Linux).

# Readable stack traces in the reports (the tree is -gline-tables-only).
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-22/bin/llvm-symbolizer}
export UBSAN_OPTIONS=print_stacktrace=1
# allocator_may_return_null=1: a request larger than memory returns NULL, as
#   malloc does, instead of ending the process. glint's failed-allocation
#   paths (compiled models' allocator, runtime/host/ModelAlloc.c) are tested
#   by asking for more than exists. A caller that then uses the NULL still
#   faults, and ASan reports that.
# allow_user_poisoning=0: the inline parts of LLVM's BumpPtrAllocator
#   compiled into glint (MLIR's type and attribute storage, for one) poison
#   and unpoison their slabs under ASan, and uninstrumented code in libMLIR.so
#   then writes to the same slabs without unpoisoning: a false
#   "use-after-poison" in the first test that makes a glint type on a worker
#   thread. Only manual poisoning is off; every other check stays.
export ASAN_OPTIONS=allocator_may_return_null=1:allow_user_poisoning=0
