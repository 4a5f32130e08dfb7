//===- Passes.td - glint passes: target-independent lowerings of glint ops to loops ---*- tablegen -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_PASSES_CONVERSIONS_PASSES_TD
#define GLINT_PASSES_CONVERSIONS_PASSES_TD

include "mlir/Pass/PassBase.td"

def GlintLowerRecurrence : Pass<"glint-lower-recurrence", "func::FuncOp"> {
  let summary = "Lowers glint.recurrence to loops on tensors";
  let description = [{
    Rewrites every `glint.recurrence` into an `scf.forall` over (batch, head)
    around a sequential `scf.for` over time that carries the head's state,
    on tensors, with exactly the op's semantics (every decay form, delta,
    bonus, skip, the normalised ratio form, reverse direction, initial and
    final state, key groups). The result bufferises with one-shot
    bufferization and is the starting point of the fused scan kernel:

    ```
    scf.forall (%b, %h) in (B, H) shared_outs(%out, %final) {
      per-head values hoisted: time-invariant decay (and its exp), bonus, skip
      %S0 = initial state of (b, h), or zeros (running max −inf for normalize)
      scf.for %s = 0 to L iter_args(%S : tensor<K x V'>, %rows : tensor<L x V>) {
        t = reverse ? L − 1 − s : s
        read q_t, k_t, v_t, the decay of t; update S; write the output row t
      }
      in_parallel: rows → out[b, :, h, :], S → final[b, h]
    }
    ```

    With `time-chunk=T` (the GPU's form: one thread per channel and time
    chunk instead of per channel), the linear form of a sequence longer than
    T runs in three parallel phases over chunks of T steps; the ratio form
    and sequences of at most T steps stay sequential (a run-time `scf.if`
    when the length is dynamic):

    ```
    scf.forall (%b, %c, %h) in (B, ⌈L/T⌉, H)    -- the chunk from zeros
      → its contribution to the state, and P_c = Π of its steps' decays
    scf.forall (%b, %h, %k) in (B, H, K)         -- chunk to chunk, in place
      scf.for %c: entering_c = S_k;  S_k ← P_c[k] S_k + contribution_c[k]
      → the entering states, the final state
    scf.forall (%b, %c, %h) in (B, ⌈L/T⌉, H)    -- the chunk from entering_c
      → its output rows
    ```

    Exact in real arithmetic; in floating point only the association of
    the decays' products differs from the sequential scan. The output row
    of a step is summed in a private tile and copied into place (on the GPU
    a register row instead of a load and store of the output per key).
  }];
  let options = [
    Option<"timeChunk", "time-chunk", "int64_t", /*default=*/"0",
           "Steps per chunk of the time-parallel form (0: one sequential "
           "scan per channel)">
  ];
  let dependentDialects = ["arith::ArithDialect", "linalg::LinalgDialect",
                           "math::MathDialect", "scf::SCFDialect",
                           "tensor::TensorDialect"];
}

def GlintLowerGradients : Pass<"glint-lower-gradients", "func::FuncOp"> {
  let summary = "Lowers the backward ops of glint-differentiate to loops on tensors";
  let description = [{
    Rewrites `glint.recurrence_grad` into a backward scan and
    `glint.attention_grad` into the softmax backward, both as scalar loops
    on tensors inside an `scf.forall` over (batch, key group):

    ```
    scf.forall (%b, %g) in (B, G) shared_outs(%dq, %dk, %dv, %dg, %dδ) {
      scf.for %h in heads of group %g {
        forward: the state at the start of every chunk of C steps → ckpt
        scf.for %c = last chunk down to 0 iter_args(%dS : tensor<K x V'>) {
          recompute the chunk's C + 1 states from ckpt[c]
          scf.for its steps backwards: read-out and update backward,
            dq, dk, dv, the decay's and δ's cotangents at t
        }
      }
    }
    ```

    Memory per head is O(L / C · K · V + C · K · V); time-invariant decays
    are summed over the batch after the loops. The attention backward
    recomputes each query row's probabilities (window, grouped heads).

    With `vector-width` W > 1, the linear form of an f32 recurrence runs
    its loops over the value axis (the forward and recomputed state rows,
    the read-out, the update, dv) on vectors of w lanes, w the largest power
    of two up to W that divides V (none if w would be 1): state rows and
    their cotangents are `vector.transfer_read`/`write`s of the tiles,
    broadcast scalars multiply them, and the sums over the value axis
    (dq, dk, the decay's cotangent) are vector partials. The key loops take
    G = min(K, w) keys at a time when G is a power of two of at least 2
    dividing K: their scalars (decay, key, query, bonus) are read as G
    lanes, and the G keys' partials are added over the lanes together by a
    transposing tree of shuffles into G lanes of dq, dk and the decay's
    cotangent (otherwise one reduction per key and step). The ratio form
    stays scalar. The attention backward's loops over the head axis (the
    scores, dq, dk) and the value axis (dP, dv) take f32 vectors of the
    largest power of two lanes up to W that divides the axis.
  }];
  let options = [
    Option<"chunkSize", "chunk-size", "int64_t", /*default=*/"64",
           "steps between two stored states of the backward scan">,
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"1",
           "f32 lanes per vector of the linear form's value-axis loops "
           "and the attention backward's head and value loops; 1: scalar "
           "loops (the CPU pipeline passes its target's)">
  ];
  let dependentDialects = ["arith::ArithDialect", "linalg::LinalgDialect",
                           "math::MathDialect", "scf::SCFDialect",
                           "tensor::TensorDialect", "vector::VectorDialect"];
}

def ConvertGlintToLinalg : Pass<"convert-glint-to-linalg", "func::FuncOp"> {
  let summary = "Lowers the per-token and short-memory glint ops to linalg";
  let description = [{
    Rewrites `glint.linear`, `glint.act`, the norms and `glint.norm_stats`
    (their gain and mean, for the attention form), `glint.embedding`,
    `glint.conv1d`, `glint.token_shift`, `glint.rotary` and
    `glint.attention` into `linalg` (generic and named ops), `tensor`,
    `arith` and `math` on tensors. `glint.recurrence` and `glint.mixer` are
    left to `glint-lower-recurrence` and `glint-inline-mixers`.
  }];
  let dependentDialects = ["arith::ArithDialect", "linalg::LinalgDialect",
                           "math::MathDialect", "scf::SCFDialect",
                           "tensor::TensorDialect"];
}

def ConvertGlintMapToLoops : Pass<"convert-glint-map-to-loops", "func::FuncOp"> {
  let summary = "Lowers the attention form's map ops to loops on tensors";
  let description = [{
    Makes the output of `glint-to-attention` compile: every
    `glint.map_reduce` and `glint.map_apply` becomes a loop over (batch,
    selected channel) that materialises ONE channel's `L × L` matrix at a
    time by walking its factor chain, and accumulates it into the result, so
    that peak memory is the result plus one channel's matrix (never
    `C × L × L`). `act_gain` becomes an element-wise `linalg.generic`.

    Per channel, the factors below a recurrence (identity, `map_conv`,
    `map_shift`, `map_scale`, `map_reshape`) are kept as a band of `W`
    diagonals (`L × W` values); the recurrence is applied to 16 columns at
    once (one `vector<16xf32>` per state element, `exp(g)` computed once per
    (token, key)): O(L²·K) multiply-adds, O(L·K) exponentials; the row
    scales after it (gates) and the aggregate (`mean`, `mean_abs`, `sum`,
    `full`, `row`) are fused into the write of each row. `map_add` sums its
    branches (materialised first for `mean_abs`). The blocks of 16 columns
    are an `scf.forall` (`parallel-columns`), long and short ones paired.

    The linear aggregates (`mean`, `sum`) of recurrences whose keys fill
    whole vectors take a blocked form (`group-channels`): columns in blocks
    of 4 vectors; a block's rows down to the next row block by the
    recurrence as above, the rows below it as a rank-K product of row
    factors (gate · q · decays since the row block's start) and column
    factors (the band folded with the decays up to the next row block),
    the decays between blocks as products of decays: every factor a
    product of decays ≤ 1 for decaying recurrences, never a quotient. One
    product sums `group-channels` channels' K terms in registers before
    it reads and writes the accumulator (once per group, not once per
    channel); reversed chains accumulate in step coordinates and are
    flipped once. A group's channels are prepared in parallel (one per
    iteration of an `scf.forall`: tables, band, gates, factors), the rows
    near the diagonal run in the product's forall over column blocks, and
    the [B, L, C] gates and Δ are read from [B, C, L] copies made once.
    With `channel-parts` P > 1 the groups are split into P runs of
    neighbouring groups, an `scf.forall` over the runs, each with its own
    tables and accumulator (the foralls inside run on the thread that runs
    the part: OpenMP serialises nested regions), summed column block by
    column block at the end: the threads share no tables and meet once per
    call instead of twice per group. P is capped at run time by the
    groups and by 256 MiB of accumulators (one part from L = 8192); one
    part runs the groups outside any forall, as P = 1 does, so that their
    foralls are not nested regions.

    Both forms accumulate into a blocked accumulator, [Lp / w, Lp, w] for
    column blocks of w columns (4 vectors blocked, 1 unblocked), so that a
    column block's rows are contiguous, read back entry by entry into the
    result at the end (rows of an [Lp, Lp] accumulator are pages apart,
    which the prefetchers do not follow).

    `map_attribution` (the attribution method) accumulates
    `max(0, A_c[i, j] · grad[b, i, c] · input[b, j, c])` over the channels,
    then divides by the channel count; it takes one input channel per map
    channel. A single recurrence forward in time adds each row's positive
    parts as the recurrence produces them (A_c is never written) and, when
    its keys fill whole vectors, takes the blocked form: a product tile
    sums one channel's K terms, takes their positive part with that
    channel's gradient and input, and adds it into the group's sums in
    registers (3 rows × 4 vectors with AVX-512, beside the channel's own
    sums), slot after slot; the rows near the diagonal do the same through
    the recurrence. Other chains (branches, reversed, a band alone)
    materialise each channel's matrix A_c (branches summed, in time
    coordinates, blocked like the accumulators).

    ```
    scf.for %b, %c:                       (c over the selected channels)
      band  = prefix factors of (b, c)    L × W, exponentials E, keys·Δ, queries
      scf.for %j0 = 0 to L step 16:       16 columns, state: K × vector<16xf32>
        scf.for %i = %j0 to L:            s = E_i ⊙ s + kΔ_i · P[i, j0:+16]
          acc[i, j0:+16] += gate_i · (q_i · s + D · P[i, j0:+16])
    ```

    Not lowered yet (the pass fails naming the op): `map_attention`, the
    normalised (RWKV-4) `map_scan`, a recurrence below another recurrence,
    a conv or shift after a recurrence, factors of mixed direction.
    `norm_stats` is left to `convert-glint-to-linalg`, which lowers it with
    the norms.
  }];
  let dependentDialects = ["arith::ArithDialect",
                           "bufferization::BufferizationDialect",
                           "linalg::LinalgDialect", "math::MathDialect",
                           "scf::SCFDialect", "tensor::TensorDialect",
                           "vector::VectorDialect"];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"16",
           "Columns of a map computed together (f32 lanes of one vector; "
           "the CPU pipeline passes its target's)">,
    Option<"parallelColumns", "parallel-columns", "bool", /*default=*/"true",
           "Run each channel's blocks of columns as an scf.forall (they "
           "write disjoint columns; the CPU pipeline runs it on its "
           "threads); off, a loop (the GPU pipeline's one-thread-per-"
           "channel loops)">,
    Option<"groupChannels", "group-channels", "int64_t", /*default=*/"8",
           "The linear aggregates (mean, sum) and the attribution map of "
           "recurrences whose keys fill whole vectors: blocks of 4 vectors "
           "of columns, the entries below each diagonal block a rank-K "
           "product per channel, summed (for the attribution map, each "
           "channel's positive part) over this many channels before the "
           "accumulator is read and written; 0: every channel by the "
           "recurrence from each column">,
    Option<"channelParts", "channel-parts", "int64_t", /*default=*/"1",
           "The blocked form: split the channel groups into up to this many "
           "parts run in parallel, each with its own accumulator, summed at "
           "the end (fewer where the accumulators would exceed 256 MiB; the "
           "CPU pipeline passes its target's threads); 1: one part, the "
           "column blocks of each group in parallel">,
  ];
}

def GlintVerifyLowered : Pass<"glint-verify-lowered", "ModuleOp"> {
  let summary = "Checks that no glint op is left after a lowering";
  let description = [{
    Fails, naming each op and its location, if any `glint` op remains: the
    proof that a lowering pipeline is complete before code generation.
  }];
}

#endif // GLINT_PASSES_CONVERSIONS_PASSES_TD
