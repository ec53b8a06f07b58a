/** Human-readable renderings of a plan and of a spec. */
import { headDim } from "./model.ts"
import type { OuterLrSchedule } from "./optimizer.ts"
import type { Plan } from "./plan.ts"
import type { RunSpec } from "./runSpec.ts"

const scheduleText = (schedule: RunSpec["data"]["schedule"]): string => {
  if (schedule === undefined || schedule.kind === "all") return ""
  if (schedule.kind === "rotate") return `; ${schedule.liveShards} shard(s) live, moving on every ${schedule.everyOuterSteps} outer steps`
  return `; ${schedule.stages.length} shard stage(s) from outer steps ${schedule.stages.map((st) => st.fromOuterStep).join(", ")}`
}

export const formatCount = (n: number): string => Math.round(n).toLocaleString("en-US")

/** 72747327488 -> "72.75 B". */
export const formatScaled = (n: number): string => {
  const units: ReadonlyArray<readonly [number, string]> = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]]
  const unit = units.find(([size]) => Math.abs(n) >= size)
  return unit === undefined ? String(n) : `${(n / unit[0]).toFixed(2)} ${unit[1]}`
}

export const formatBytes = (bytes: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"] as const
  let value = bytes
  let i = 0
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024
    i++
  }
  return i === 0 ? `${bytes} B` : `${value.toFixed(2)} ${units[i]}`
}

export const formatDuration = (ms: number): string => {
  if (ms < 1000) return `${ms} ms`
  const s = ms / 1000
  if (s < 120) return `${Number(s.toFixed(1))} s`
  const m = s / 60
  if (m < 120) return `${Number(m.toFixed(1))} min`
  const h = m / 60
  return h < 48 ? `${Number(h.toFixed(1))} h` : `${Number((h / 24).toFixed(1))} days`
}

const table = (title: string, rows: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(...rows.map(([k]) => k.length))
  return [title, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join("\n")
}

export const formatPlan = (p: Plan): string => {
  const m = p.memoryPerPeer
  const rows: Array<readonly [string, string]> = [
    ["parameters", `${formatCount(p.parameters)} (${formatScaled(p.parameters)}) in ${p.tensors} tensors`],
    ["update on the wire", `${formatBytes(p.wire.bytes)} (${p.wire.coding}; ${formatCount(p.wire.bytes)} bytes)`],
    ["  indices / values / stats", `${formatBytes(p.wire.indexBytes)} / ${formatBytes(p.wire.valueBytes)} / ${formatBytes(p.wire.statsBytes)}`],
    ["  vs float32", `${formatBytes(p.wire.fp32Bytes)}: ${p.wire.ratioVsFp32.toFixed(1)}x smaller, ${p.wire.bitsPerParameter.toFixed(4)} bits/parameter`],
    ["  density", `${(100 * p.wire.density).toFixed(4)} % of coordinates sent`],
    ["tokens per inner step", formatCount(p.tokens.perInnerStep)],
    ["tokens per window, one peer", `${formatCount(p.tokens.perPeerPerWindow)} (${formatScaled(p.tokens.perPeerPerWindow)})`],
    ["tokens per round", `${formatCount(p.tokens.perRound)} (${formatScaled(p.tokens.perRound)}) from ${p.tokens.peersGathered} peers`],
    [`memory per peer (${m.dtype})`, `${formatBytes(m.total)} without activations`],
    ["  parameters / gradients", `${formatBytes(m.parameters)} / ${formatBytes(m.gradients)}`],
    ["  AdamW moments", formatBytes(m.adamState)],
    ["  outer snapshot theta0", formatBytes(m.outerSnapshot)],
    ["  error feedback / momentum", `${formatBytes(m.errorFeedback)} / ${formatBytes(m.outerMomentum)}`],
    ["window", `${p.time.blocksPerWindow} blocks x ${formatDuration(p.time.blockTimeMs)} = ${formatDuration(p.time.windowMs)}`],
    ["upload window", formatDuration(p.time.uploadWindowMs)],
  ]
  if (p.budget !== undefined) {
    rows.push(
      ["token budget", `${formatCount(p.budget.tokens)} (${formatScaled(p.budget.tokens)})`],
      ["  rounds", `${formatCount(p.budget.rounds)} (${formatCount(p.budget.innerStepsPerPeer)} inner steps per peer)`],
      ["  duration", formatDuration(p.budget.durationMs)],
    )
  }
  return table(`Plan for ${p.name}`, rows)
}

const formatOuterLr = (lr: OuterLrSchedule): string =>
  lr.kind === "constant"
    ? `${lr.value}`
    : [String(lr.initial), ...lr.milestones.map((m) => `${m.value} from step ${m.fromOuterStep}`)].join(" -> ")

export const formatSpecSummary = (s: RunSpec): string => {
  const m = s.model
  const o = s.innerOptimizer
  const c = s.compression
  const p = s.participation
  const chain = s.infrastructure.chain
  const transport = s.infrastructure.transport
  const rows: Array<readonly [string, string]> = [
    ["seed", String(s.seed)],
    [
      "model",
      `${m.family} dim ${m.dim}, ${m.nLayers} layers, ${m.nHeads} heads (head_dim ${headDim(m)}), ${m.nKvHeads} kv heads, ffn ${m.ffnDim}, vocab ${m.vocabSize}, seq ${m.seqLen}, rope theta ${m.ropeTheta}, ${m.tiedEmbeddings ? "tied" : "untied"} embeddings, ${m.dtype}`,
    ],
    [
      "data",
      `${s.data.source.kind === "shards" ? `shards at ${s.data.source.uri}` : `${s.data.source.kind} source`}, ${s.data.tokenizer.kind} tokenizer, ${s.data.sampling.samplesPerWindow} of a ${s.data.sampling.poolSize}-sample pool per (uid, window)${scheduleText(s.data.schedule)}`,
    ],
    [
      "inner optimizer",
      `AdamW lr ${o.lr} (warmup ${o.schedule.warmupSteps}, cosine to ${o.schedule.minLrFraction} over ${o.schedule.totalSteps} steps), betas (${o.betas[0]}, ${o.betas[1]}), eps ${o.eps}, wd ${o.weightDecay}, clip ${o.gradClip}; H = ${o.innerSteps}, batch ${o.batchSize} (micro ${o.microBatchSize})`,
    ],
    [
      "outer optimizer",
      `SGD lr ${formatOuterLr(s.outerOptimizer.lr)}${s.outerOptimizer.momentum > 0 ? `, momentum ${s.outerOptimizer.momentum}${s.outerOptimizer.nesterov ? " (Nesterov)" : ""}` : ""}`,
    ],
    [
      "compression",
      c.kind === "none"
        ? "none (full-precision DiLoCo)"
        : `SparseLoCo top-${c.topk} of ${c.chunk}x${c.chunk} chunks, EF decay ${c.efDecay}, ${c.quantBins} bins range ${c.quantRange}, ${c.indexCoding} indices`,
    ],
    [
      "participation",
      `${p.blocksPerWindow} blocks x ${formatDuration(p.blockTimeMs)}, upload window ${formatDuration(p.uploadWindowMs)}, ${p.peersGathered} peers + ${p.reservePeers} reserve, ${p.evaluationsPerWindow} evaluations per window, ${p.admission.kind}`,
    ],
    ["chain", chain.kind === "local" ? `local at ${chain.path}` : `subtensor ${chain.endpoint} netuid ${chain.netuid}`],
    ["transport", transport.kind === "filesystem" ? `folder ${transport.dir}` : `s3 ${transport.endpoint} bucket ${transport.bucket}`],
    [
      "checkpoints",
      `every ${s.checkpointing.everyOuterSteps} outer steps to ${s.checkpointing.dir} (keep ${s.checkpointing.keep}; model${s.compression.kind === "none" && s.outerOptimizer.nesterov && s.outerOptimizer.momentum > 0 ? " + outer momentum" : ""}, signed by the leader)`,
    ],
  ]
  if (s.tokenBudget !== undefined) rows.push(["token budget", formatScaled(s.tokenBudget)])
  return table(`Run ${s.name}`, rows)
}
