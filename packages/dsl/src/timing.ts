/**
 * A run's timing against the chain it runs on. Windows are counted in blocks, but upload windows,
 * polls and gather deadlines are milliseconds: a run written for 800 ms blocks (the debug preset on
 * the local chain) puts every upload after its 2 s upload window on a chain of 12 s
 * blocks, where a block is seen hundreds of ms after its timestamp. `fitToBlockTime` derives the
 * millisecond fields from a block time; `timingIssues` says why a spec cannot run on a chain whose
 * blocks were measured, so a node refuses it at start instead of gathering nothing.
 */
import type { ParticipationSpec } from "./participation.ts"
import { debug } from "./presets.ts"
import type { RunSpec } from "./runSpec.ts"

export interface FitOptions {
  /** The shortest upload window worth having on a real network (default 5 s: RPC lag + the upload itself). */
  readonly minUploadWindowMs?: number
  /** The subnet's weights rate limit (subtensor `weightsSetRateLimit`, 100 blocks by default): weights are set no more often. */
  readonly weightsRateLimitBlocks?: number
}

/** Blocks an upload window must span at least: a block's jitter either side of its timestamp. */
export const minUploadWindowBlocks = 2

/**
 * The spec with its timing fitted to `blockTimeMs` blocks: the upload window scaled with the block
 * time (never under two blocks or `minUploadWindowMs`), enough blocks per window for the upload
 * window plus the training time the spec left (at least a block), gather polls and deadlines scaled
 * with the upload window, weights no more often than the rate limit. A spec already fitted to
 * `blockTimeMs` comes back unchanged (covenant72b at 12 s is its own fit).
 */
export const fitToBlockTime = (spec: RunSpec, blockTimeMs: number, options: FitOptions = {}): RunSpec => {
  const p = spec.participation
  const bt = Math.max(1, Math.round(blockTimeMs))
  const scale = bt / p.blockTimeMs
  const uploadWindowMs = Math.max(Math.round(p.uploadWindowMs * scale), minUploadWindowBlocks * bt, options.minUploadWindowMs ?? 5_000)
  const computeMs = Math.max(p.blocksPerWindow * p.blockTimeMs - p.uploadWindowMs, bt)
  const needed = Math.ceil((uploadWindowMs + computeMs) / bt)
  const blocksPerWindow = p.blocksPerWindow * bt >= uploadWindowMs + computeMs ? p.blocksPerWindow : needed + 2
  const uploadRatio = uploadWindowMs / p.uploadWindowMs
  const pollIntervalMs = Math.min(Math.max(p.gather.pollIntervalMs, 1_000), Math.max(p.gather.pollIntervalMs, Math.round(p.gather.pollIntervalMs * scale)))
  const perObjectTimeoutMs = Math.max(Math.round(p.gather.perObjectTimeoutMs * uploadRatio), pollIntervalMs)
  const totalTimeoutMs = Math.max(Math.round(p.gather.totalTimeoutMs * uploadRatio), perObjectTimeoutMs)
  const rate = options.weightsRateLimitBlocks
  const setWeightsEveryWindows = rate === undefined ? p.setWeightsEveryWindows : Math.max(p.setWeightsEveryWindows, Math.floor(rate / blocksPerWindow) + 1)
  const chain = spec.infrastructure.chain
  return {
    ...spec,
    participation: { ...p, blockTimeMs: bt, blocksPerWindow, uploadWindowMs, setWeightsEveryWindows, gather: { pollIntervalMs, perObjectTimeoutMs, totalTimeoutMs } },
    infrastructure: { ...spec.infrastructure, chain: chain.kind === "local" ? { ...chain, blockTimeMs: bt } : chain },
  }
}

/** How far a measured block time may stray from the spec's before the spec is refused. */
export const blockTimeTolerance = 0.25

/** Why `p` cannot run on a chain making blocks every `chainBlockTimeMs` (measured); empty when it can. */
export const timingIssues = (p: ParticipationSpec, chainBlockTimeMs: number): ReadonlyArray<string> => {
  const issues: string[] = []
  if (Math.abs(p.blockTimeMs - chainBlockTimeMs) > blockTimeTolerance * chainBlockTimeMs) {
    issues.push(`the run assumes ${p.blockTimeMs} ms blocks but the chain makes one every ${Math.round(chainBlockTimeMs)} ms: fit the run to the chain (fitToBlockTime(spec, ${Math.round(chainBlockTimeMs)}), or --fit-to-chain)`)
  }
  if (p.uploadWindowMs < minUploadWindowBlocks * chainBlockTimeMs) {
    issues.push(`the upload window (${p.uploadWindowMs} ms) is shorter than ${minUploadWindowBlocks} blocks (${Math.round(minUploadWindowBlocks * chainBlockTimeMs)} ms): uploads would land after it, as block times jitter and blocks are seen after their timestamp`)
  }
  if (p.blocksPerWindow * chainBlockTimeMs - p.uploadWindowMs < chainBlockTimeMs) {
    issues.push(`a window (${p.blocksPerWindow} blocks of ${Math.round(chainBlockTimeMs)} ms) leaves less than a block after the ${p.uploadWindowMs} ms upload window for training`)
  }
  return issues
}

/**
 * The debug model on a real subtensor subnet (12 s blocks): as `debug()` but fitted to 12 s blocks
 * (5-block windows of 60 s, a 30 s upload window) and setting weights no more often than
 * subtensor's default rate limit of 100 blocks. The endpoint and netuid are placeholders: the CLI's
 * `--chain ws://… --netuid N` pick the subnet.
 */
export const debugSubnet = (): RunSpec => {
  const base = debug()
  return fitToBlockTime(
    {
      ...base,
      name: "debug-subnet",
      infrastructure: { ...base.infrastructure, chain: { kind: "subtensor", endpoint: "ws://127.0.0.1:9944", netuid: 2 } },
      checkpointing: { ...base.checkpointing, dir: ".covenant/debug-subnet/checkpoints" },
    },
    12_000,
    { weightsRateLimitBlocks: 100 },
  )
}
