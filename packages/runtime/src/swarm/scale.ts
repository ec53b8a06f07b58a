/**
 * The declared rule that scales a run spec to the machine at hand: the same architecture family
 * and protocol (LLaMA with GQA and SwiGLU, SparseLoCo with the same chunking, top-k density,
 * 2-bit quantization and EF decay, the same window/upload/gather structure), with width, depth,
 * vocabulary, batch, inner steps and window length cut down so every window fits the budget.
 */
import type { RunSpec } from "@covenant/dsl"

export interface MachineBudget {
  /** Peers that train in this process. */
  readonly peers: number
  /** Windows (outer rounds) to run. */
  readonly windows: number
  /** Model width: a multiple of 16 (default 64). */
  readonly dim?: number
  readonly layers?: number
  /** Window length in ms (default 3000: each of 6 blocks 500 ms). */
  readonly windowMs?: number
}

const roundTo = (x: number, m: number) => Math.max(m, Math.round(x / m) * m)

/**
 * The rule, field by field:
 * - model: `dim` (default 64), `layers` (default 2); head count keeps the source's head:kv-head
 *   ratio with kv heads = max(1, heads / ratio) and heads = dim / 8 (capped by the source's);
 *   ffn keeps the source's ffn/dim ratio (rounded to 16); byte vocabulary (258) on the shipped
 *   corpus; seqLen 64; float32.
 * - inner AdamW: same betas, eps, wd, clip; batch 2, H 3; lr scaled by sqrt(source dim / dim)
 *   (smaller models take larger steps), warm-up 2 H, cosine over the whole scaled run.
 * - outer: the source's initial outer lr, constant (its milestones lie beyond a short run).
 * - compression: unchanged (chunk edge, k per chunk, EF decay, bins, range, index coding).
 * - participation: windows of `windowMs` in 6 blocks, upload interval 700 ms, gather polls 50 ms,
 *   peers gathered = peers; weights every 3 windows; retention 10 windows.
 * - infrastructure: local chain and filesystem store under .covenant/<name>; checkpoints every 5.
 */
export const scaleToMachine = (spec: RunSpec, budget: MachineBudget): RunSpec => {
  const src = spec.model
  const dim = budget.dim ?? 64
  const ratio = Math.max(1, Math.round(src.nHeads / src.nKvHeads))
  const nHeads = Math.max(ratio, Math.min(src.nHeads, Math.floor(dim / 8)))
  const nKvHeads = Math.max(1, Math.floor(nHeads / ratio))
  const ffnDim = roundTo((src.ffnDim / src.dim) * dim, 16)
  const batchSize = 2
  const innerSteps = 3
  const windowMs = budget.windowMs ?? 3000
  const blocksPerWindow = 6
  const blockTimeMs = Math.round(windowMs / blocksPerWindow)
  const name = `${spec.name}-scaled`.slice(0, 64)
  const initialOuterLr = spec.outerOptimizer.lr.kind === "constant" ? spec.outerOptimizer.lr.value : spec.outerOptimizer.lr.initial
  return {
    ...spec,
    name,
    tokenBudget: budget.peers * budget.windows * batchSize * innerSteps * 64,
    model: {
      family: "llama", dim, nLayers: budget.layers ?? 2, nHeads, nKvHeads, ffnDim,
      vocabSize: 258, seqLen: 64, ropeTheta: src.ropeTheta, normEps: src.normEps, tiedEmbeddings: src.tiedEmbeddings, dtype: "float32",
    },
    data: {
      source: { kind: "text", path: "packages/runtime/corpus" },
      tokenizer: { kind: "bytes" },
      eosTokenId: 256,
      sampling: { kind: "uidWindowSeed", poolSize: 64, samplesPerWindow: batchSize * innerSteps },
    },
    innerOptimizer: {
      ...spec.innerOptimizer,
      lr: spec.innerOptimizer.lr * Math.sqrt(src.dim / dim),
      schedule: { ...spec.innerOptimizer.schedule, warmupSteps: 2 * innerSteps, totalSteps: Math.max(2 * innerSteps + 1, budget.windows * innerSteps) },
      innerSteps,
      batchSize,
      microBatchSize: batchSize,
    },
    outerOptimizer: { ...spec.outerOptimizer, lr: { kind: "constant", value: initialOuterLr } },
    participation: {
      ...spec.participation,
      blocksPerWindow,
      blockTimeMs,
      uploadWindowMs: 700,
      peersGathered: budget.peers,
      reservePeers: 0,
      evaluationsPerWindow: budget.peers,
      retentionWindows: 10,
      gather: { pollIntervalMs: 50, perObjectTimeoutMs: 700, totalTimeoutMs: 2000 },
    },
    infrastructure: {
      chain: { kind: "local", path: `.covenant/${name}/chain`, blockTimeMs },
      transport: { kind: "filesystem", dir: `.covenant/${name}/store` },
    },
    checkpointing: { ...spec.checkpointing, everyOuterSteps: 5, dir: `.covenant/${name}/checkpoints`, keep: 2 },
  }
}
