//===- Passes.td - glint passes: the CPU target ---------------*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CPU_PASSES_TD
#define GLINT_PASSES_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def GlintChunkRecurrence : Pass<"glint-chunk-recurrence", "ModuleOp"> {
  let summary = "Lowers matrix-state recurrences to the chunked form";
  let description = [{
    Rewrites matrix-state `glint.recurrence` ops (f32, V > 1, static K and
    V) with a decay shared by a head's keys (`[H]` or `[B, L, H]`, with or
    without `delta`: Mamba-2, RetNet, data-dependent per-head decays) into
    the chunked form of Mamba-2's SSD, before `glint-vectorize-recurrence`,
    which keeps every op this pass leaves. Within a chunk of C steps
    (`chunk-size`) the recurrence is a few small matrix products; between
    chunks only the K x V state is passed on:

    ```
    running = initial_state or 0                                [B, H, K, V]
    scf.for each pass of P chunks (`chunks-per-pass`) {
      scf.forall (b, key group g, chunk c) {      -- 1: within the chunk
        Kᵀ, Q of the chunk; scores = Q Kᵀ (blocks on or below the diagonal)
        per head h of g:  a_i = exp(g_i (* delta_i))
          W = scores ⊙ M ⊙ delta_j,  M_ij = a_{j+1} ... a_i (j <= i), else 0
          rows = W V (+ skip v_i)
          stash[c] = Σ_j (a_{j+1} ... a_{n-1}) delta_j k_j v_jᵀ;  total[c] = Π a_i
      }
      scf.forall (b, h, key row k) {                 -- 2: between chunks
        for c in the pass (from the last when reverse):
          S = running[k]; running[k] = total[c] S + stash[c][k]; stash[c][k] = S
      }
      scf.forall (b, h, chunk c) {               -- 3: the entering state
        rows_i += (a_0 ... a_i) q_iᵀ stash[c]
      }
    }
    final_state = running
    ```

    The mask and the decays are products of the step factors a_s <= 1 taken
    from a step towards the chunk's end (a running product per column, a 1
    entering on the diagonal), never the exponential of a difference of
    prefix sums: nothing overflows, factors of e^-20 per step underflow to
    0, and no sum runs across chunks, so L = 16384 is as exact as L = 64.
    The products are vector loops in register blocks (4 rows x 2 vectors of
    W lanes with AVX2's 16 registers, x 4 with AVX-512's 32: loads and
    broadcasts for 8 or 16 FMAs), along V with masked transfers past its end
    and exact bounds along the rows (a block of rows, then one at a time);
    `math.exp` stays an op for `glint-approximate-math`. A pass keeps P
    chunk states ([B, H, P, K, V], as many as fit 4 MiB per batch element
    between twice the threads and 64, a multiple of the threads), so the
    scratch does not grow with L and each pass is three parallel regions.
    `reverse` walks the chunks, and each chunk, from the end;
    `initial_state` starts the running state and `final_state` is its last
    value; key groups share the scores of the group. With `outline` (the
    default) the chunked form is a private function
    (`@__glint_chunked_recurrence`), shared by every op of the same types,
    operands and direction and called in their place: a model's layers
    share one copy, so the generated code and the compile time do not grow
    with the depth (four Mamba-2 layers: 4.3 s inline, 1.0 s outlined; the
    recurrent form 0.4 s).

    Left to the recurrent forms: RWKV-4's `normalize`, V = 1 (the
    per-channel form keeps the state in registers), non-f32 types, and
    per-key decays (`[B, L, H, K]`, `[H, K]`: GLA, RWKV-6, HGRN-2) and
    `bonus`. A per-key mask exp(G_i[k] − G_j[k]) does not factor into a
    scalar per (i, j): factoring it as q_i e^(G_i − G_ref) and
    k_j e^(G_ref − G_j) overflows float32 for decays down to −20 per step
    within a few steps, and the safe alternative (sub-chunks with the
    reference at each row block's start plus per-element exponentials on the
    diagonal blocks, as flash-linear-attention does) is not written yet.

    `form=chunked` takes every op it can, `form=recurrent` none. With
    `form=auto` (the default) an op runs chunked when L >= `min-length`
    (default: a chunk per thread, C x `threads`; shorter, the chunks cannot
    fill the threads) and either the chunked form does at most 0.9 of the
    recurrent form's work (0.77 with W = 16) by an op count per step and
    head (recurrent: 3 K V; chunked: 2 K V + C V / 2 + C K / (2 H/G)), or,
    with W = 8, the recurrent form would leave threads idle (its
    B x min(H, 2) x ceil(V / Vt) work items fewer than `threads`). When L or B is dynamic the choice is an `scf.if`
    at run time, with the op itself, for the recurrent forms, in the else
    branch. `threads` is what OpenMP will give the compiled code without
    run-time settings; the CPU pipeline passes its target's (the tools
    build it from the host, OMP_NUM_THREADS first, or from `--threads`).

    Measured with `glint-bench --recurrence-form=recurrent,chunked,auto` (the forms
    timed back to back in one process; AMD EPYC with AVX2, 2 cores, W = 8):
    updates/s of the chunked form over the recurrent one at L = 512 / 2048
    / 8192, on one thread; on two:

    | shape (model ratio) | 1 thread | 2 threads |
    |---|---|---|
    | Mamba-2 H=24, N=128, P=64 (0.76) | 1.37 / 1.35 / 1.35 | 1.34 / 1.37 / 1.29 |
    | Mamba-2 H=2 (0.83) | 1.20 / 1.18 / 1.11 | 1.17 / 1.16 / 1.13 |
    | Mamba-2 H=1 (0.92: recurrent) | 1.04 / 1.03 / 0.99 | 1.01 / 1.02 / 0.98 |
    | RetNet-like H=8, K=128, V=256 (0.79) | 1.05 / 1.29 / 1.26 | 0.91 / 1.14 / 1.05 |
    | RetNet-like H=1 (0.79) | 1.19 / 1.16 / 1.19 | 1.15 / 1.11 / 1.23 |
    | H=1, K=128, V=32 (1.08; one work item recurrent) | 0.69 / 0.67 / 0.66 (recurrent) | 1.34 / 1.30 / 1.26 (chunked: idle thread) |
    | H=16, K=32, V=64 (1.17: recurrent) | 0.55 / 0.48 / 0.52 | 0.46 / 0.44 / 0.49 |

    Shorter than a chunk per thread (L = 64 on two threads) the chunked
    form ran 0.51-0.77x; from L = 128, 0.96-1.30x. In every row form=auto
    ran within noise of the better form (auto over recurrent 0.96-1.40x).
    The same on an Intel Xeon with AVX-512 (2 cores, W = 16), where the
    recurrent form's state tile is four 16-lane rows per key and the
    chunked form gains less (L = 512 / 2048 / 8192; one thread: 2048 / 8192
    only):

    | shape (model ratio) | 1 thread | 2 threads |
    |---|---|---|
    | Mamba-2 H=24 (0.76: chunked) | 1.09 / 1.00 | 1.14 / 1.10 / 0.88 |
    | Mamba-2 H=2 (0.83: recurrent) | | 0.88 / 0.89 / 0.91 |
    | Mamba-2 H=1 (0.92: recurrent) | 0.81 / 0.77 | 0.70 / 0.81 / 0.82 |
    | RetNet-like H=8 (0.79: recurrent) | 0.98 / 0.89 | 0.90 / 0.89 / 0.71 |
    | RetNet-like H=1 (0.79: recurrent) | 0.84 / 0.86 | 0.83 / 0.85 / 0.88 |
    | H=1, K=128, V=32 (1.08: recurrent, idle thread) | | 0.79 / 0.84 / 0.80 |
    | H=16, K=32, V=64 (1.17: recurrent) | | 0.41 / 0.43 / 0.31 |

    Hence the lower limit with 16 lanes, and no chunked form for idle
    threads alone there. Both limits are calibrated on one machine each.
    Not measured: more than two threads, where the recurrent form's
    B x min(H, 2) x tiles work items leave most threads idle for B = 1.
    On a machine busy with other work the chunked form's three parallel
    regions per pass wait on descheduled threads more than the recurrent
    form's one region (seen at 0.3-0.6 busy cores of two: 0.4-0.5x).
    Tried and reverted: computing each output row once in phase 3 (intra
    and inter products in the same accumulators, scores kept for it)
    instead of writing the intra-chunk rows in phase 1 and adding the
    entering state's read-out in phase 3: 2-8% slower, 25% with V = 32.
  }];
  let options = [
    Option<"form", "form", "glint::RecurrenceForm",
           /*default=*/"glint::RecurrenceForm::Auto",
           "Which form matrix-state recurrences take",
           [{::llvm::cl::values(
             clEnumValN(glint::RecurrenceForm::Auto, "auto",
                        "chunked where the op-count model says it does "
                        "less work"),
             clEnumValN(glint::RecurrenceForm::Recurrent, "recurrent",
                        "leave every op to the recurrent forms"),
             clEnumValN(glint::RecurrenceForm::Chunked, "chunked",
                        "every op that has the form"))}]>,
    Option<"threads", "threads", "int64_t", /*default=*/"1",
           "Threads the compiled code will run on (the CPU pipeline passes "
           "its target's)">,
    Option<"minLength", "min-length", "int64_t", /*default=*/"0",
           "form=auto: the shortest sequence (L) that runs chunked, checked "
           "at run time when L is dynamic (0: a chunk per thread, "
           "chunk-size x threads)">,
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"64",
           "Steps per chunk (rounded up to a multiple of the vector width)">,
    Option<"chunksPerPass", "chunks-per-pass", "int64_t", /*default=*/"0",
           "Chunks whose states are kept at once (0: as many as fit 4 MiB "
           "per batch element, from twice the threads to 64)">,
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector (the CPU pipeline passes its target's: "
           "16 with AVX-512)">,
    Option<"outline", "outline", "bool", /*default=*/"true",
           "Put the chunked form in a private function shared by every op "
           "of the same types, operands and direction">
  ];
  let dependentDialects = ["arith::ArithDialect", "func::FuncDialect",
                           "linalg::LinalgDialect", "math::MathDialect",
                           "scf::SCFDialect", "tensor::TensorDialect",
                           "vector::VectorDialect"];
}

def GlintVectorizeRecurrence
    : Pass<"glint-vectorize-recurrence", "func::FuncOp"> {
  let summary = "Lowers glint.recurrence to vectorised scan loops for the CPU";
  let description = [{
    Rewrites the `glint.recurrence` ops that have a vector form into loops on
    tensors with `vector` arithmetic, before `glint-lower-recurrence`, which
    keeps the rest (RWKV-4's ratio form, V = 1 with key groups that are
    neither shared nor one per channel, non-f32 element types). W is the
    vector width in f32 lanes (`vector-width`; the CPU pipeline passes its
    target's, 16 with AVX-512).

    Per-channel recurrences (V = 1: Mamba-1, Vision Mamba, RG-LRU) put W
    heads side by side in a vector; the K state entries of W channels are K
    vectors carried through the time loop in registers, keys and queries
    shared by every head are broadcast, and the decay is one `math.exp` per
    state vector and step. Where K vectors and their decays would not fit
    the register file (K = 16 with AVX2's 16 registers), a time block runs
    in passes of `key-block` keys, each adding its read-out to the rows the
    first pass wrote. The channels are split into `chunks` chunks of
    blocks of W; a chunk runs time blocks of `time-block` steps, each block
    for all its channel blocks in turn (the state of a block waits in a
    small buffer meanwhile), so that the rows of a step are read as one run
    of consecutive lines. The per-key decay and an initial state ([H, K]
    rows, one channel's K keys each) are packed per block by reading each
    channel's row as vectors of W keys and transposing the W x W tiles in
    registers (W log2(W) shuffles per tile), and a final state is written
    back the same way; a generated token runs one step per call, and
    inserting one lane at a time had made that packing as costly as the
    step itself:

    ```
    A_n = A[c : c + W, n] packed once per block of channels
    scf.forall (%b, %chunk) in (B, chunks) shared_outs(%out) {
      scf.for %tb = 0 to ceil(L / Tb) iter_args(%rows, %states) {
        scf.for %blk in chunk iter_args(%rows, %states) {
          S_n = %states[blk, n] for n < K : vector<W x f32>
          scf.for %t in block tb iter_args(%S0, ..., %S{K-1}, %rows) {
            u, dt = vector.transfer_read v, delta [b, t, c : c + W]
            S_n = exp(dt * A_n) * S_n + broadcast(k[b, t, 0, n]) * (dt * u)
            y = sum_n broadcast(q[b, t, 0, n]) * S_n + D * u
            vector.transfer_write y -> rows[t, c : c + W]
          }
        }
      }
    }
    ```

    Matrix-state recurrences (V > 1: Mamba-2, RWKV-6, GLA, HGRN-2, RetNet)
    tile each head's K x V state along V into K x Vt tiles of at most
    `state-tile-bytes` (Vt a multiple of W, at most 4 W), which stay in L1
    while a head runs a time block. Steps go in pairs: one pass over the
    tile's rows, each row loaded and stored once, updates it for both steps
    and forms both read-outs; per-key decays are exponentiated with vector
    `math.exp` a pair ahead; the next steps' rows are prefetched
    (`prefetch-distance`):

    ```
    scf.forall (%b, %chunk, %vt) in (B, chunks, ceil(V / Vt)) shared_outs(%out) {
      scf.for %tb iter_args(%rows, %tiles : tensor<heads x K x Vt>, %a) {
        scf.for %h in chunk {
          scf.for %pair in block tb iter_args(%S : tensor<K x Vt>, %rows, %a : tensor<2 x K>) {
            scf.for %k = 0 to K iter_args(%S, %o_0 .. %o_{2R-1}) {
              s = S[k, j W : (j + 1) W]
              for t in the pair: s = a_t[k] s + k_t[k] v_t[j]; o_tj += q_t[k] s
              S[k, ...] = s   (with a bonus, o_tj reads s before the update)
            }
            rows[t, h, v0 : v0 + Vt] = o_t (+ skip v_t);  %a = exp(g) of the next pair
          }
          (the last step of an odd block alone)
        }
      }
    }
    ```

    When H (or V) is not a multiple of the tile, the last tile's transfers
    are masked. Every feature of the op is kept: delta, skip, bonus,
    reverse, initial and final state. Sums run in vector order, so the
    result agrees with the op to float32 rounding, not bit for bit.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector (the CPU pipeline passes its target's: "
           "16 with AVX-512)">,
    Option<"stateTileBytes", "state-tile-bytes", "int64_t",
           /*default=*/"16384",
           "Largest K x Vt state tile of a matrix-state recurrence, in bytes">,
    Option<"timeBlock", "time-block", "int64_t", /*default=*/"4",
           "Steps of a time block: every chunk of channels (or heads) runs "
           "a block's steps before the next block">,
    Option<"chunks", "chunks", "int64_t", /*default=*/"2",
           "Chunks of channel blocks (or heads) per batch element and V "
           "tile: the parallel work, best one per core">,
    Option<"prefetchDistance", "prefetch-distance", "int64_t",
           /*default=*/"2",
           "Steps ahead that a matrix-state scan prefetches its rows (0: none)">,
    Option<"keyBlock", "key-block", "int64_t", /*default=*/"0",
           "State vectors of a per-channel scan kept in registers per pass "
           "over a time block; more keys take several passes, each adding "
           "its read-out to the rows (0: 8 with 8 lanes (AVX2's 16 "
           "registers), else 16)">
  ];
  let dependentDialects = ["arith::ArithDialect",
                           "bufferization::BufferizationDialect",
                           "linalg::LinalgDialect", "math::MathDialect",
                           "memref::MemRefDialect", "scf::SCFDialect",
                           "tensor::TensorDialect", "vector::VectorDialect"];
}

def GlintVectorizeGradients
    : Pass<"glint-vectorize-gradients", "func::FuncOp"> {
  let summary = "Lowers per-channel glint.recurrence_grad to vector loops for "
                "the CPU";
  let description = [{
    Rewrites the `glint.recurrence_grad` ops of the per-channel form (V = 1,
    f32: Mamba-1, Vision Mamba, RG-LRU; keys shared by every head or one per
    head with K = 1; no ratio form, no bonus) into loops on tensors with
    `vector` arithmetic, before `glint-lower-gradients`, which keeps the
    rest. It is that pass's checkpointed backward scan (the state stored
    every `chunk-size` steps, each chunk's states recomputed from its
    checkpoint, then its steps run backwards carrying the state cotangent)
    with W heads side by side in a vector (W = `vector-width`), like
    `glint-vectorize-recurrence`'s per-channel form: the K state entries of W
    channels and their cotangents are K vectors each.

    ```
    scf.forall (%b, %chunk) in (B, chunks) shared_outs(%dv, %ddelta, %dlog, %dq, %dk) {
      scf.for %blk in chunk {                 -- channels c .. c + W
        forward, storing S every C steps -> ckpt : [ceil(L / C), K, W]
        scf.for chunks of C steps, last first iter_args(%dS_0 .. %dS_{K-1}) {
          recompute the chunk's states -> [C + 1, K, W], decays a -> [C, K, W]
          scf.for its steps, last first {
            dy, v, delta = vector.transfer_read [b, t, c : c + W]
            dS_n += q_t[n] dy;  dq[t, n] += S_t,n dy     (per lane)
            dv = D dy + sum_n dS_n k_t[n] delta;  dk[t, n] += dS_n v delta
            dA_n += dS_n S_{t-1},n a_n delta;  ddelta = ...;  dS_n = a_n dS_n
          }
        }
      }
    }
    ```

    In a gradient function the forward `glint.recurrence` on the same
    operands (glint-differentiate keeps it for the layers after it) passes
    through every checkpoint on its way: where it is a per-channel scan from
    a zero state, earlier in the same block, this pass lowers it too, as
    `glint-vectorize-recurrence` would (`time-block` steps per time block),
    and its time blocks that start a chunk also store the state into a
    `[B, blocks, ceil(L / C) + 1, K, W]` tensor; the backward then reads its
    checkpoints there, and the forward scan of its own (a third of its
    work) is gone. The states are the same floats either way: the same
    operations in the same order. The CPU pipeline runs this pass before
    `glint-vectorize-recurrence` for it; `fuse-forward=false` keeps the two
    apart.

    Shared keys' and queries' cotangents are summed per lane into a
    `[L, K, W]` scratch of each chunk, reduced over its lanes into the
    chunk's `[L, K]` partial, and over the chunks after the loop; time-invariant decays are accumulated in registers and summed
    over the batch after it. Where H is not a multiple of W the last block's
    transfers are masked. Sums run in vector order, so the result agrees
    with `glint-lower-gradients` to float32 rounding.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector (the CPU pipeline passes its target's: "
           "16 with AVX-512)">,
    Option<"chunks", "chunks", "int64_t", /*default=*/"2",
           "Chunks of channel blocks per batch element: the parallel work, "
           "best one per core">,
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"64",
           "Steps between stored states (checkpoints) of the backward scan">,
    Option<"fuseForward", "fuse-forward", "bool", /*default=*/"true",
           "Lower the forward glint.recurrence on the same operands with the "
           "backward, keeping the checkpoints as it passes them">,
    Option<"timeBlock", "time-block", "int64_t", /*default=*/"4",
           "Steps of a time block of that forward scan (as "
           "glint-vectorize-recurrence's time-block); it keeps the "
           "checkpoints only where chunk-size is a multiple of it">
  ];
  let dependentDialects = ["arith::ArithDialect",
                           "bufferization::BufferizationDialect",
                           "linalg::LinalgDialect",
                           "math::MathDialect", "scf::SCFDialect",
                           "tensor::TensorDialect", "vector::VectorDialect"];
}

def GlintVectorizeConv : Pass<"glint-vectorize-conv", "func::FuncOp"> {
  let summary = "Lowers glint.conv1d to vector loops over the channels";
  let description = [{
    Rewrites each f32 `glint.conv1d` with a static channel count into loops
    on tensors that compute an output row from the K input rows it reads, W
    channels per vector (`vector-width`, the target's), straight from the
    input (no padded copy), in a forall over the batch and `chunks` chunks of
    channels:

    ```
    %wt = linalg.transpose %w : [C, K] -> [K, C]
    scf.forall (%b, %chunk) in (B, chunks) shared_outs(%out) {
      scf.for %s = 0 to L {                  -- reverse: t = L - 1 - s
        scf.for %c in the chunk step W {
          y = bias[c : c + W]
          y = fma(wt[i, c : c + W], x[b, t(s - K + 1 + i), c : c + W], y)
                                             -- i < K; steps before the
                                             -- start read initial_state
          out[b, t, c : c + W] = y
    } } }
    ```

    Rows are walked in memory order. The first K - 1 steps (which may read
    the initial state) run in their own loop, so the main loop has no
    branch; channels past the last full vector are masked. The final state
    is copied out after the loop. Sums run in tap order, so the result
    agrees with the op to float32 rounding.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector (the CPU pipeline passes its target's: "
           "16 with AVX-512)">,
    Option<"chunks", "chunks", "int64_t", /*default=*/"2",
           "Chunks of channels per batch element: the parallel work, best "
           "one per core">
  ];
  let dependentDialects = ["arith::ArithDialect", "linalg::LinalgDialect",
                           "math::MathDialect", "scf::SCFDialect",
                           "tensor::TensorDialect", "vector::VectorDialect"];
}

def GlintGuardParallel : Pass<"glint-guard-parallel"> {
  let summary = "Runs small parallel loops as plain loops on the calling thread";
  let description = [{
    Puts each `scf.parallel` without results behind a test, so that a loop
    whose work is small, or that would get one thread, runs as plain
    `scf.for` loops on the thread that reached it instead of going through
    the OpenMP runtime (starting and joining a team of two costs about a
    microsecond; a region the runtime runs on one thread, half of that:
    more than a tiny model's layer or a generation step's per-token loop
    takes):

    ```
    scf.if ((work >= min-work || bytes >= min-bytes
             || argument bytes >= min-argument-bytes)
            && iterations >= 2 && omp_get_max_threads() > 1) {
      scf.parallel ...            // convert-scf-to-openmp: omp.parallel
    } else {
      scf.for ... { scf.for ... { body } }
    }
    work = iterations of the loop nest x operations of one iteration
    bytes = min(iterations of the loop nest x bytes its loads read,
                the sizes of the memrefs they read)
    argument bytes = min(bytes, the sizes of those memrefs that are
                         arguments of the function), counted only where
                     the function's memref arguments take min-bytes or
                     more together
    ```

    A loop that reads more than min-bytes (a core's L2) cannot find its
    data in the cache of the core that reached it: a second core adds
    bandwidth, however few the operations. Bytes read again (a weight
    panel re-read by every row tile) count once: each load's memref is
    traced through its views to one defined in front of the loop, whose
    size (memref.dim for the dynamic extents) bounds what the loop can
    read; the region's own scratch counts nothing.

    A function whose arguments (weights, inputs, states) take more than a
    core's cache reads them from memory on every call: a generation step
    of a Mamba-130m-shaped model reads its 150-500 MB of weights once per
    token. There a loop that reads a few hundred KiB of them (a layer's
    x_proj and dt_proj weights, the scan's state and decays) gains from a
    second core's bandwidth although it reads less than min-bytes. The
    arguments' size is read off their static extents (dynamic ones count
    1), so a tiny model's functions keep the other two tests alone.

    One iteration's operations are counted statically (1 per operation,
    4 per load, an inner `scf.for` or `scf.parallel` its trip count times
    its body, an
    `scf.if` both branches), with trip counts computed in front of the
    loop: bounds defined there as they are, bounds that depend on an outer
    induction variable replaced by an upper bound read off their arithmetic
    (`min`, `a - b`, sums, products), unknown lower bounds by 0. The
    estimate only over-counts; a loop whose work it cannot bound (an
    `scf.while`, a call, a bound it cannot follow) is left as it was. Runs
    after `lower-affine`, before `convert-scf-to-openmp`; the serial body
    sits in a `memref.alloca_scope` when it allocates on the stack.
  }];
  let options = [
    Option<"minWork", "min-work", "int64_t", /*default=*/"1600000",
           "Estimated operations from which a loop runs on every thread">,
    Option<"minBytes", "min-bytes", "int64_t", /*default=*/"2097152",
           "Estimated bytes read from which a loop runs on every thread, "
           "however few its operations (0: operations only)">,
    Option<"minArgumentBytes", "min-argument-bytes", "int64_t",
           /*default=*/"65536",
           "In a module one of whose entry points takes min-bytes or more "
           "of memref arguments, the bytes of its function's arguments a "
           "loop reads from which it runs on every thread (0: off)">,
  ];
  let dependentDialects = ["arith::ArithDialect", "func::FuncDialect",
                           "memref::MemRefDialect", "scf::SCFDialect"];
}

def GlintNarrowWeights : Pass<"glint-narrow-weights", "ModuleOp"> {
  let summary = "Keeps the matrix weights in bf16 or f16 in memory";
  let description = [{
    Changes the element type of every external f32 weight of rank 2 (an
    `ml_program.global` with an `#ml_program.extern` value) that is only
    read as the weight of a `glint.linear` or as the table of a
    `glint.embedding` to `dtype` (`bf16` or `f16`): the compiled model then
    takes it in that type, half the bytes, and the kernels widen each vector
    to f32 as they read it (`glint-vectorize-matmul` for products, the
    gather's element conversion for embeddings). Arithmetic stays f32.

    ```
    ml_program.global private @w(#ml_program.extern : tensor<3072x768xf32>)
    %w = ml_program.global_load_const @w : tensor<3072x768xf32>
    %y = glint.linear %x, %w : (tensor<?x?x768xf32>, tensor<3072x768xf32>) -> ...
    ```

    becomes

    ```
    ml_program.global private @w(#ml_program.extern : tensor<3072x768xbf16>)
    %w = ml_program.global_load_const @w : tensor<3072x768xbf16>
    %y = glint.linear %x, %w : (tensor<?x?x768xf32>, tensor<3072x768xbf16>) -> ...
    ```

    A weight with any other use (a norm's gain, a convolution, a gradient
    op, a block-diagonal linear) stays f32, so the narrowing only ever
    rounds the weights that dominate the bytes a generated token reads. It
    is exact for a checkpoint stored in `dtype`; an f32 checkpoint is
    rounded to nearest even when the runtime loads it. Runs before
    `convert-glint-to-linalg`, on the CPU target (`glint-compile
    --weight-dtype`).
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", "\"bf16\"",
           "The weights' element type in memory: bf16 or f16">,
  ];
}

def GlintVectorizeMatmul : Pass<"glint-vectorize-matmul", "ModuleOp"> {
  let summary = "Lowers 2-D f32 matrix products to register-blocked vector "
                "loops";
  let description = [{
    Rewrites each `linalg.matmul` on tensors with f32 operands, a weight of
    static shape `[K, N]` or `[N, K]` (the transposed-B indexing maps that
    `glint.linear` uses for PyTorch's `[out, in]` weights) and A `[M, K]`
    (M dynamic) into explicit vector loops, chosen at run time by M:

    ```
    %c = linalg.matmul ins(%a, %w : tensor<?x768xf32>, tensor<3072x768xf32>)
                       outs(%init : tensor<?x3072xf32>) -> tensor<?x3072xf32>
    ```

    becomes

    ```
    %c = scf.if (M >= pack-min-rows) {
      %wp = pack %w into [P, K, NR]             -- NR = tile-vectors * W
      scf.forall (%mb, %pc) in (ceil(M / MC), ceil(P / PC)) shared_outs(%init) {
        scf.for %kb (depth blocks of KC) {
          scf.for %p (the chunk's panels) {
            scf.for %m (row tiles of MR) {
              acc[MR][NR / W] : vector<W x f32> = C tile
              scf.for %k iter_args(acc) {        -- outer product per k
                acc[i][j] = fma(broadcast(A[m + i, k]), wp[p, k, j W : +W], acc[i][j])
              }
              C tile = acc
    } } } } } else {
      scf.forall over column chunks:
        [N, K] weight: dot products along k (8 weight rows, W lanes, one
                       horizontal sum per output)
        [K, N] weight: the outer-product tile with MR = 1 on the weight rows
    }
    ```

    The accumulators start from the output's initial value (zeros or the
    broadcast bias). Tiles at the end of N are masked (the packed panel is
    zero-padded); rows past the last full MR tile use MR = 1. A bf16 or f16
    weight (`glint-narrow-weights`) is read in its own type and widened to
    f32 in registers (packed as f32 panels on the many-rows path, widened
    per load on the few-rows path, which reads half the bytes). A grouped
    f32 product (`glint.linear` with a `[G, I, O]` or `[G, O, I]` weight,
    a generic over (m, g, o, i), e.g. RWKV-6's token-shift LoRA) becomes
    one such product per group on the group's slices, in a loop over G.
    Products with a dynamic K or N, other element types or indexing maps,
    or inside another parallel loop are left for `convert-linalg-to-loops`.

    Prepared weights (`prepare-weights`, on by default): a rank-2 weight
    bound from the checkpoint (an `ml_program.global` with an
    `#ml_program.extern` value) that only such products read, as their B
    operand in one layout, and otherwise only element reads (`tensor.extract`,
    the gather of an embedding table tied to the product) is given the type
    of its panels, `[P, K, NR]` in its own element type, and the attribute
    `glint.panels = {layout = "nk" | "kn", shape = [...], width = NR}`; the
    runtime lays the checkpoint's matrix out so once, when it binds the
    weights. Both paths then read the panels: the many-rows path without
    packing (a bf16 or f16 panel is widened per load), the few-rows path as
    an outer product of each row of A with `stream-panels` neighbouring
    panels at a time (the weight streams in memory order in that many
    places at once), each of them prefetched `prefetch-bytes` ahead (one
    `memref.prefetch` per cache line of a panel's row: with few rows the
    loads alone keep too few lines in flight; a bf16 panel's row is one
    line, and one row of A reads it with a quarter of the f32 form's
    instructions per byte); an element read of (n, k) reads
    `panels[n / NR, k, n % NR]`.

    ```
    ml_program.global private @w(#ml_program.extern : tensor<96x768x32xf32>)
        {glint.panels = {layout = "nk", shape = array<i64: 3072, 768>, width = 32}}
    ```
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector (the CPU pipeline passes its target's: "
           "16 with AVX-512)">,
    Option<"tileRows", "tile-rows", "int64_t", /*default=*/"6",
           "Rows of A per register tile (MR)">,
    Option<"tileVectors", "tile-vectors", "int64_t", /*default=*/"2",
           "Vectors of output columns per register tile (NR / W)">,
    Option<"rowBlock", "row-block", "int64_t", /*default=*/"96",
           "Rows of A per parallel work item (MC, rounded to a multiple of "
           "MR): its depth block stays in L2">,
    Option<"depthBlock", "depth-block", "int64_t", /*default=*/"256",
           "Depth per pass over a panel (KC): the panel's KC x NR block stays "
           "in L1">,
    Option<"panelChunk", "panel-chunk", "int64_t", /*default=*/"4",
           "Panels of NR columns per parallel work item (PC)">,
    Option<"packMinRows", "pack-min-rows", "int64_t", /*default=*/"16",
           "Rows of A from which the weight is packed into panels; fewer rows "
           "read the weight directly">,
    Option<"streamPanels", "stream-panels", "int64_t", /*default=*/"4",
           "Prepared panels the few-rows path reads side by side (at most "
           "panel-chunk): one tile of that many panels per row, so that the "
           "weight streams through memory in as many places at once">,
    Option<"prefetchBytes", "prefetch-bytes", "int64_t", /*default=*/"2048",
           "How far ahead the few-rows path on prepared panels prefetches "
           "each panel it reads, in bytes of the panel (0: no software "
           "prefetch)">,
    Option<"threads", "threads", "int64_t", /*default=*/"1",
           "Threads the code runs on (the CPU pipeline passes its target's): "
           "the few-rows path on prepared panels takes fewer than "
           "panel-chunk panels per work item where that gives every thread "
           "one">,
    Option<"prepare", "prepare-weights", "bool", /*default=*/"true",
           "Hold each weight that only products (and element reads) read as "
           "panels [P, K, NR] that the runtime lays out when it binds the "
           "weights (glint.panels), instead of packing it on every call">,
    Option<"outline", "outline", "bool", /*default=*/"true",
           "Compute each product that starts from a fill or a bias row in a "
           "private function shared by all products of its shapes">
  ];
  let dependentDialects = ["arith::ArithDialect",
                           "bufferization::BufferizationDialect",
                           "func::FuncDialect", "linalg::LinalgDialect",
                           "math::MathDialect", "memref::MemRefDialect",
                           "scf::SCFDialect", "tensor::TensorDialect",
                           "vector::VectorDialect"];
}

def GlintVectorizeElementwise
    : Pass<"glint-vectorize-elementwise", "func::FuncOp"> {
  let summary = "Computes element-wise pre-activations in their own vector "
                "loops";
  let description = [{
    The element-wise maps around a scan (softplus(Δ), the SiLU and sigmoid
    gates, exp of a log-decay, residual adds) are each a `linalg.generic`.
    This pass writes each of them as explicit vector loops on tensors, W f32
    lanes (`vector-width`, the target's: 16 with AVX-512) along the
    innermost dimension, masked past its end, in a forall over the outer
    dimensions (their threads):

    ```
    %y = scf.forall (%i0, ..., %i{r-2}) in (outer dims) shared_outs(%out) {
      %row = tensor.extract_slice %out[%i0, ..., 0] [1, ..., 1, D]
      scf.for %j = 0 to D step W iter_args(%row) {
        x = vector.transfer_read %in[%i0, ..., %j]   (broadcast inputs: a
        y = the generic's body on vector<W x f32>      row, or one value per
        vector.transfer_write y, %row[%j]              row)
      }
    }
    ```

    so that they run at the full vector width in their own pass over the
    data, never inside the scan (left to LLVM at 256 bits, Mamba-1's
    softplus(Δ) alone took half as long as the vectorised scan).
    Generics with several results, a body that reads its output, index ops,
    non-element-wise or non-f32 body ops, or an innermost dimension shorter
    than W / 2, are left as they are. Of the reductions, sums of such a map
    along the innermost dimension (`out[i] += f(x[i, j], ...)`: a norm's
    mean and variance) become a forall over the output's elements, each
    summing W lanes of `f` at a time into a vector (masked past the row's
    end) and adding its lanes once; other reductions are left as they are
    (LLVM had vectorised RWKV-6's group-norm sums over rows of 16 across
    the rows, with gathers and scatters: 15% of its forward).

    First (`fuse`, on by default), chains of such maps become one map, so
    one loop: a map whose result only one other map or row sum reads,
    element for element (not through a broadcast), is fused into that
    reader (`linalg::fuseElementwiseOps`), a `linalg.fill` read by a map
    becomes a scalar of its body, and a `linalg.broadcast` read by a map is
    read as its input through a broadcast map (the copy is gone). A producer
    read through a broadcast keeps its own loop (fused, it would be
    computed again for each element it is spread over); so does one read by
    several ops, unless it is cheap to repeat: at most four additions'
    worth of work per element (additions, subtractions, multiplications,
    negations, comparisons, selects, minima and maxima one each, divisions
    and square roots four, transcendentals too much; ops on values per row
    only, as a norm's gain, do not count), every other use a map or row sum
    that reads it element for element or a map that only writes into its
    buffer, and with n readers of its k full-size inputs, n k <= k + 1 + n
    (no more rows read than its own loop and its readers read). Each reader
    then computes it from a copy of its own, the maps that only wrote into
    its buffer take empty tensors, and its loop goes. A pass over memory
    costs its bytes ([L, 32] f32 at L = 2048 is 256 KiB), a few operations
    per element in each reader do not. A backward pass is made of such
    chains: SiLU's derivative is six maps and two fills of ones; a norm's
    backward (its gain spread over the row, x̂ and ĝ read by two maps and
    two row sums) was seven loops and is three, the sums of ĝ ⊙ x̂ and of ĝ
    and the map that writes dx.
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector (the CPU pipeline passes its target's: "
           "16 with AVX-512)">,
    Option<"fuse", "fuse", "bool", /*default=*/"true",
           "Fuse chains of maps first (false: one loop per map)">
  ];
  let dependentDialects = ["arith::ArithDialect", "scf::SCFDialect",
                           "tensor::TensorDialect", "vector::VectorDialect"];
}

def GlintWriteSlicesInPlace
    : Pass<"glint-write-slices-in-place", "func::FuncOp"> {
  let summary = "Computes the parts of an assembled tensor into their slices of it";
  let description = [{
    Runs right before one-shot bufferization. A tensor assembled from parts,
    `tensor.insert_slice` of each into a `tensor.empty` (as
    `glint-differentiate` joins the cotangents of Mamba's x / z and dt / B / C
    splits), bufferizes into one buffer for the whole, one for each part,
    and a copy of each part into the whole: at L = 2048 the two [L, 64]
    copies into the [L, 128] cotangent of a tiny Mamba's in_proj took 5% of
    its gradient. When a part is computed into a `tensor.empty` of its own
    (the init of the `scf.forall`, `scf.for` or destination-style op that
    produces it, followed through such ops and through a
    `collapse_shape(expand_shape(x))` pair that gives back x, which the
    insert then reads directly), that use of the empty becomes
    `tensor.extract_slice` of the insert's destination (the whole with the
    parts before inserted) at the part's offsets and sizes. Both are
    tensors whose contents are undefined until the producer writes them, so
    no value changes; bufferization then writes the part in place and the
    copy folds away. (A slice of the whole's empty itself would do for the
    values, but bufferization would see the part written into the whole
    before the earlier inserts read it, and copy.)

    Before:
    ```mlir
    %e = tensor.empty(%n) : tensor<?x64xf32>
    %dz = scf.forall (%i) in (%n) shared_outs(%o = %e) -> (tensor<?x64xf32>) { ... }
    %dx = ...
    %w = tensor.empty(%n) : tensor<?x128xf32>
    %0 = tensor.insert_slice %dz into %w[0, 64] [%n, 64] [1, 1]
    %1 = tensor.insert_slice %dx into %0[0, 0] [%n, 64] [1, 1]
    ```
    After:
    ```mlir
    %w = tensor.empty(%n) : tensor<?x128xf32>
    %s = tensor.extract_slice %w[0, 64] [%n, 64] [1, 1]
    %dz = scf.forall (%i) in (%n) shared_outs(%o = %s) -> (tensor<?x64xf32>) { ... }
    %0 = tensor.insert_slice %dz into %w[0, 64] [%n, 64] [1, 1]
    %dx = ...         // into tensor.extract_slice %0[0, 0] [%n, 64] [1, 1]
    %1 = tensor.insert_slice %dx into %0[0, 0] [%n, 64] [1, 1]
    ```

    The insert's destination (the whole's `tensor.empty`, the inserts of
    the parts before, and the pure ops that give their sizes and the
    slice's offsets and sizes) moves up in front of the producer when it
    came after. A `linalg.fill` on the way moves next to the op that reads
    it, or when others read it too, is cloned there for this part. Only
    parts produced in the block of the insert, into a chain of inserts
    that starts at a `tensor.empty`, and slices of unit strides that keep
    the rank; anything else is left as it was.
  }];
  let dependentDialects = ["tensor::TensorDialect"];
}

def GlintLegalizeBuffers : Pass<"glint-legalize-buffers", "func::FuncOp"> {
  let summary = "Prepares bufferized code for loops and LLVM";
  let description = [{
    Two rewrites between bufferization and the lowering to loops:

    * `memref.copy` becomes `linalg.copy`, so that it lowers to plain loops
      rather than to a call of MLIR's runner library (`memrefCopy`), which
      a compiled model must not depend on; with `contiguous-as-memcpy`, a
      copy between two contiguous row-major buffers stays `memref.copy`,
      which the LLVM lowering turns into `llvm.memcpy` (as loops, LLVM
      vectorised such copies of narrow rows across rows, with a gather and
      a scatter per element column); with `copy-rows-as-vectors`, a copy
      between two buffers whose rows (innermost dimension) have unit stride
      but which are not both contiguous becomes loops over the outer
      dimensions moving each row by `vector.transfer_read` /
      `vector.transfer_write` of `vector-width` f32 lanes (as many bits for
      other element types; masked past the row's end) — slices of a
      wider buffer and shifted views, which LLVM otherwise vectorised the
      same way, across rows;
    * `memref.expand_shape` of a buffer with the identity layout becomes
      `memref.reinterpret_cast` with the output sizes and row-major strides.
      MLIR 22's `expand-strided-metadata` crashes on an expand_shape that
      splits one dimension into two dynamic ones (`memref<?x96xf32>` into
      `memref<?x?x96xf32>`, from collapsing [batch, seq] around a matmul).
  }];
  let options = [
    Option<"contiguousAsMemcpy", "contiguous-as-memcpy", "bool",
           /*default=*/"false",
           "Keep copies between contiguous buffers as memref.copy (llvm.memcpy "
           "on the CPU; not in kernels, which the GPU pipeline outlines from "
           "loops)">,
    Option<"copyRowsAsVectors", "copy-rows-as-vectors", "bool",
           /*default=*/"false",
           "Copies between buffers with unit-stride rows as loops of vector "
           "transfers, one row at a time">,
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"8",
           "f32 lanes per vector of copy-rows-as-vectors (the CPU pipeline "
           "passes its target's: 16 with AVX-512)">
  ];
  let dependentDialects = ["arith::ArithDialect", "linalg::LinalgDialect",
                           "memref::MemRefDialect", "scf::SCFDialect",
                           "vector::VectorDialect"];
}

def GlintApproximateMath : Pass<"glint-approximate-math", "func::FuncOp"> {
  let summary = "Replaces libm-bound math ops by polynomial approximations";
  let description = [{
    Rewrites `math.exp`, `math.exp2`, `math.tanh`, `math.erf`, `math.log`,
    `math.log1p`, `math.expm1`, … on f32 (scalars and vectors) into
    polynomial approximations (a few ulp in f32): straight-line arithmetic
    that LLVM can inline and vectorise, instead of one libm call per
    element, which took more than half of a scan's time.
    `exp` and `exp2` use glint's own forms (13 and 7 to 12 instructions,
    MLIR's exp takes about 25); `exp2` honours `fastmath<ninf>` by leaving
    out its clamp, and with `avx512` uses `vrndscaleps` / `vscalefps`
    (`llvm.call_intrinsic "llvm.x86.avx512.mask.scalef.ps.512"`) on
    vector<16xf32>. Softplus's tail `log1p(exp(-|x|))` (an argument in
    (0, 1]) becomes a degree-8 polynomial without range reduction or
    division, matched before the exp is expanded.
  }];
  let options = [
    Option<"avx512", "avx512", "bool", /*default=*/"false",
           "The target has AVX-512F: use its instructions (through LLVM "
           "intrinsics) where they save work">
  ];
  let dependentDialects = ["arith::ArithDialect", "LLVM::LLVMDialect",
                           "math::MathDialect", "vector::VectorDialect"];
}

def GlintInlineAllocaScopes : Pass<"glint-inline-alloca-scopes"> {
  let summary = "Removes memref.alloca_scope regions that allocate nothing";
  let description = [{
    `convert-scf-to-openmp` wraps every parallel loop body in a
    `memref.alloca_scope`, whose region must stay a single block; lowering
    the loops inside it to control flow then breaks the verifier. A scope
    whose body contains no `memref.alloca` bounds nothing, so its body is
    inlined in place of it (scopes with allocas are left alone).
  }];
  let dependentDialects = ["memref::MemRefDialect"];
}

def GlintFlushDenormals : Pass<"glint-flush-denormals", "ModuleOp"> {
  let summary = "Runs compiled models with subnormal floats flushed to zero";
  let description = [{
    Brackets each entry point (a public function with a body) and each
    `omp.parallel` region's body with calls to the model runtime:

    ```
    %saved = func.call @glint_denormals_off() : () -> i32
    ...
    func.call @glint_denormals_restore(%saved) : (i32) -> ()
    ```

    On x86 the first sets MXCSR's flush-to-zero and denormals-are-zero bits
    and returns the register as it was, the second restores it
    (`runtime/host/ModelAlloc.c`), so that the calling thread and OpenMP's
    workers leave a call as they entered it. A long product of exponential
    decays, or a cotangent carried back through one, runs into float32's
    subnormal range, where x86 cores take a microcode assist per operation
    (Mamba-1's gradient at L = 2048: 5–9% of its time). Runs after
    `convert-scf-to-openmp`, while entry points and regions are one block.
  }];
  let dependentDialects = ["func::FuncDialect"];
}

#endif // GLINT_PASSES_CPU_PASSES_TD
