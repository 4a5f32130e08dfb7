//===- Passes.td - glint passes: the CUDA target --------------*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CUDA_PASSES_TD
#define GLINT_PASSES_CUDA_PASSES_TD

include "mlir/Pass/PassBase.td"

def GlintParallelToGpu : Pass<"glint-parallel-to-gpu", "func::FuncOp"> {
  let summary = "Runs each outermost parallel loop nest as one GPU kernel";
  let description = [{
    Rewrites every `scf.parallel` that is not nested in another (the loops
    of bufferized linalg ops, and the `(batch, channel)` loops of the
    recurrences) into a `gpu.launch` over its whole iteration space: the
    iterations are numbered row-major (the last loop fastest, so that
    neighbouring threads touch neighbouring elements of row-major buffers),
    each thread runs one iteration, and `block-size` threads form a block
    (fewer, down to one warp, when the launch would otherwise have fewer
    than `min-blocks` blocks: the sizes are computed at run time).
    Parallel loops inside the nest run sequentially in their thread; loops
    with a constant trip count whose unrolled body stays under 512 ops are
    unrolled (a recurrence's loops over its state entries then index its
    stack buffers with constants, which LLVM keeps in registers).
    Loops with no iteration launch nothing. Every kernel is outlined into
    one module, `@glint_kernels`, as `@<function>_kernel_<n>`.

    Buffers are shared with the host (the CUDA runtime allocates them as
    managed memory), so code left outside the kernels (index arithmetic,
    the odd scalar load) stays correct. Constant buffers
    (`memref.get_global`) are fetched inside the kernel, so that outlining
    puts their globals in the kernel module, in device memory. A buffer allocated inside a loop
    nest must have been promoted to the stack (`promote-buffers-to-stack`);
    any other allocation, and parallel loops with reductions, are errors
    naming the loop.

    ```mlir
    scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c64) step (%c1, %c1) {
      ...
    }
    // becomes, with t = n * 64 iterations and
    // s = min(256, max(32, 32 * ceildiv(ceildiv(t, 264), 32))):
    gpu.launch blocks(%bx, ...) in (%gx = ceildiv(t, s), ...)
               threads(%tx, ...) in (%sx = s, ...) {
      %k = %bx * %sx + %tx
      scf.if %k < t { %i = %k / 64; %j = %k % 64; ... }
    }
    ```
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "Threads per block (a multiple of 32, at most 1024)">,
    Option<"minBlocks", "min-blocks", "int64_t", /*default=*/"264",
           "Blocks a launch should have at least: smaller blocks (down to "
           "one warp) are used to reach it (264: two per multiprocessor of "
           "an H100/H200)">,
  ];
  let dependentDialects = ["arith::ArithDialect", "gpu::GPUDialect",
                           "scf::SCFDialect"];
}

def GlintMatmulToBlas : Pass<"glint-matmul-to-blas", "ModuleOp"> {
  let summary = "Runs f32 matrix products through cuBLAS, kernels as fallback";
  let description = [{
    Rewrites every f32 `linalg.matmul` on buffers, `C[m, n] += A[m, k] *
    B[k, n]` or with `B[n, k]` transposed (how `glint.linear` lowers), into a
    call of the CUDA runtime's `glint_cuda_sgemm` with the three buffers'
    pointers and strides. The runtime runs it with cuBLAS (loaded with
    dlopen) when it can; where it cannot (no cuBLAS on the machine, a
    buffer whose columns are not contiguous) the call returns 0 and the
    original `linalg.matmul`, kept under an `scf.if`, runs as a kernel.

    ```mlir
    %done = func.call @glint_cuda_sgemm(%transposed, %m, %n, %k, %a, %a_row,
        %a_col, %b, %b_row, %b_col, %c, %c_row, %c_col) : (...) -> i32
    scf.if (%done == 0) { linalg.matmul ... }
    ```
  }];
  let dependentDialects = ["arith::ArithDialect", "func::FuncDialect",
                           "memref::MemRefDialect", "scf::SCFDialect"];
}

def GlintMarkDeviceMemory : Pass<"glint-mark-device-memory", "ModuleOp"> {
  let summary = "Records whether buffers can live in device memory";
  let description = [{
    Runs after `glint-parallel-to-gpu`. When no op outside the kernels
    reads or writes the contents of a buffer (the host code only allocates,
    frees, takes views and passes pointers; a `glint_cuda_sgemm` call hands
    them to cuBLAS), the module gets `glint.device_memory = true` and its
    buffers are plain device memory; otherwise `false`, and the CUDA runtime
    uses managed memory, which the host can touch too. The code generation
    turns the attribute into the symbol `glint_cuda_device_memory`, which
    runtime/cuda reads.
  }];
}

def GlintStackKernelBuffers
    : Pass<"glint-stack-kernel-buffers", "func::FuncOp"> {
  let summary = "Puts the small buffers of parallel loop bodies on the stack";
  let description = [{
    Runs right after bufferization, before buffer deallocation. A GPU thread
    cannot allocate heap memory, and a buffer allocated afresh in every step
    of a loop would grow its stack; so every `memref.alloc` with a static
    shape of at most `max-bytes` bytes inside an `scf.forall` (a
    recurrence's state and the temporaries of each step) becomes one
    `memref.alloca` at the start of the body of the outermost `scf.forall`
    around it: each iteration of that loop (one GPU thread) gets its own
    buffer, reused by the loops inside it. A buffer that a loop passes on
    to its next iteration (`scf.yield`) stays where it is.

    Reusing a temporary across the steps of a loop is safe because a fresh
    allocation has no defined contents: every step writes it before reading
    it.
  }];
  let options = [
    Option<"maxBytes", "max-bytes", "int64_t", /*default=*/"4096",
           "The largest buffer put on a thread's stack">,
  ];
  let dependentDialects = ["memref::MemRefDialect"];
}

def GlintGpuLaunchToLoops : Pass<"glint-gpu-launch-to-loops",
                                 "func::FuncOp"> {
  let summary = "Runs GPU kernels as parallel loops on the CPU (emulation)";
  let description = [{
    The inverse of `glint-parallel-to-gpu`, for checking the CUDA target's
    kernels on a machine without a GPU: every `gpu.launch` (before
    outlining) becomes a sequential `scf.for` nest over its blocks and
    threads, with the launch's block and thread ids replaced by the loops'
    induction variables (y and z are 0). It is exact for kernels without
    barriers or shared memory, which is all glint-parallel-to-gpu makes, so
    the CPU runs the same index arithmetic, bounds guards and per-thread
    buffers as the GPU would (`glint-compile --target=cuda --gpu-emulate`).
    The threads' stack buffers become one set before the loops, which the
    iterations reuse one after the other (each writes them before reading).
  }];
  let dependentDialects = ["arith::ArithDialect", "memref::MemRefDialect",
                           "scf::SCFDialect"];
}

#endif // GLINT_PASSES_CUDA_PASSES_TD
