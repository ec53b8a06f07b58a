/** What a spec implies: size, bytes on the wire, tokens, memory and time. */
import { type CompressionSpec, type SparseLoCoCompression, VALUE_BITS } from "./compression.ts"
import { chunkGrid, clampK } from "./chunking.ts"
import { bytesPerValue, modelTensors, type ModelDtype, type TensorSpec, tensorSize } from "./model.ts"
import type { RunSpec } from "./runSpec.ts"
import { windowDurationMs } from "./participation.ts"

/** log2 of the binomial coefficient C(n, k): the bits that name a k-subset of n positions. */
export const log2Binomial = (n: number, k: number): number => {
  const m = Math.min(k, n - k)
  let bits = 0
  for (let i = 0; i < m; i++) bits += Math.log2((n - i) / (i + 1))
  return bits
}

export interface WireSize {
  readonly indexBytes: number
  readonly valueBytes: number
  readonly statsBytes: number
  readonly bytes: number
  /** Values sent. */
  readonly kept: number
}

/**
 * Bytes of one tensor's compressed update. Throws RangeError for a tensor of three or more
 * dimensions, which SparseLoCo does not chunk (see chunking.ts); `modelTensors` has none.
 */
export const tensorWireSize = (tensor: TensorSpec, c: CompressionSpec): WireSize => {
  const size = tensorSize(tensor)
  if (c.kind === "none") return { indexBytes: 0, valueBytes: 4 * size, statsBytes: 0, bytes: 4 * size, kept: size }
  const grid = chunkGrid(tensor.shape, c.chunk)
  if (grid === undefined) throw new RangeError(`${tensor.name}: SparseLoCo chunks 1-D and 2-D tensors only, got [${tensor.shape.join(", ")}]`)
  const { chunkLength, chunks } = grid
  const k = clampK(c.topk, chunkLength)
  const kept = k * chunks
  const indexBytes =
    c.indexCoding === "packed12" ? Math.ceil((kept * 12) / 8) : Math.ceil((chunks * log2Binomial(chunkLength, k)) / 8)
  const valueBytes = Math.ceil((kept * VALUE_BITS) / 8)
  const statsBytes = statsBytesOf(c)
  return { indexBytes, valueBytes, statsBytes, bytes: indexBytes + valueBytes + statsBytes, kept }
}

/** Per-tensor quantization stats as float32: shift, scale and one lookup entry per bin. */
const statsBytesOf = (c: SparseLoCoCompression): number => 4 * (2 + c.quantBins)

export interface Plan {
  readonly name: string
  readonly parameters: number
  readonly tensors: number
  readonly wire: {
    readonly coding: "packed12" | "rice" | "float32"
    readonly bytes: number
    readonly indexBytes: number
    readonly valueBytes: number
    readonly statsBytes: number
    /** The same update as float32. */
    readonly fp32Bytes: number
    readonly ratioVsFp32: number
    readonly bitsPerParameter: number
    /** Fraction of coordinates sent. */
    readonly density: number
  }
  readonly tokens: {
    readonly perInnerStep: number
    readonly perPeerPerWindow: number
    readonly peersGathered: number
    readonly perRound: number
  }
  /** Training state one peer holds, at the model's dtype; activations not included. */
  readonly memoryPerPeer: {
    readonly dtype: ModelDtype
    readonly parameters: number
    readonly gradients: number
    readonly adamState: number
    /** theta0, kept to form the pseudo-gradient theta0 - theta_H. */
    readonly outerSnapshot: number
    readonly errorFeedback: number
    readonly outerMomentum: number
    readonly total: number
  }
  readonly time: {
    readonly blocksPerWindow: number
    readonly blockTimeMs: number
    readonly windowMs: number
    readonly uploadWindowMs: number
  }
  readonly budget?: {
    readonly tokens: number
    readonly rounds: number
    readonly innerStepsPerPeer: number
    readonly durationMs: number
  }
}

export const plan = (spec: RunSpec): Plan => {
  const tensors = modelTensors(spec.model)
  const parameters = tensors.reduce((n, t) => n + tensorSize(t), 0)
  const sizes = tensors.map((t) => tensorWireSize(t, spec.compression))
  const sum = (f: (w: WireSize) => number) => sizes.reduce((n, w) => n + f(w), 0)
  const bytes = sum((w) => w.bytes)
  const fp32Bytes = 4 * parameters

  const { batchSize, innerSteps } = spec.innerOptimizer
  const perInnerStep = batchSize * spec.model.seqLen
  const perPeerPerWindow = perInnerStep * innerSteps
  const peersGathered = spec.participation.peersGathered
  const perRound = perPeerPerWindow * peersGathered

  const b = bytesPerValue(spec.model.dtype)
  const onePerParameter = parameters * b
  const memory = {
    dtype: spec.model.dtype,
    parameters: onePerParameter,
    gradients: onePerParameter,
    adamState: 2 * onePerParameter,
    outerSnapshot: onePerParameter,
    errorFeedback: spec.compression.kind === "sparseloco" ? onePerParameter : 0,
    outerMomentum: spec.outerOptimizer.momentum > 0 ? onePerParameter : 0,
  }
  const total = memory.parameters + memory.gradients + memory.adamState + memory.outerSnapshot + memory.errorFeedback + memory.outerMomentum

  const windowMs = windowDurationMs(spec.participation)
  const base: Plan = {
    name: spec.name,
    parameters,
    tensors: tensors.length,
    wire: {
      coding: spec.compression.kind === "none" ? "float32" : spec.compression.indexCoding,
      bytes,
      indexBytes: sum((w) => w.indexBytes),
      valueBytes: sum((w) => w.valueBytes),
      statsBytes: sum((w) => w.statsBytes),
      fp32Bytes,
      ratioVsFp32: fp32Bytes / bytes,
      bitsPerParameter: (8 * bytes) / parameters,
      density: sum((w) => w.kept) / parameters,
    },
    tokens: { perInnerStep, perPeerPerWindow, peersGathered, perRound },
    memoryPerPeer: { ...memory, total },
    time: {
      blocksPerWindow: spec.participation.blocksPerWindow,
      blockTimeMs: spec.participation.blockTimeMs,
      windowMs,
      uploadWindowMs: spec.participation.uploadWindowMs,
    },
  }
  if (spec.tokenBudget === undefined) return base
  const rounds = Math.ceil(spec.tokenBudget / perRound)
  return {
    ...base,
    budget: { tokens: spec.tokenBudget, rounds, innerStepsPerPeer: rounds * innerSteps, durationMs: rounds * windowMs },
  }
}
