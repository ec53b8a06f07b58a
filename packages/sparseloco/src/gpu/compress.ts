// gpu-webgpu's sources, typechecked through the import, use the WebGPU types; this package's
// tsconfig does not list them.
/// <reference types="@webgpu/types" />
/**
 * The codec step over tensors that already live on the engine's device (a peer training on the
 * GPU): error feedback, per-chunk top-k and the EF subtraction run as kernels, so only the
 * selected entries (k per chunk, ~1.6 % of the tensor at k = 64 of 4096) cross to the CPU.
 *
 * Quantization statistics are computed by the CPU code (quantize.ts) over the downloaded values,
 * not on the GPU: the reference mean and norm are exact sums rounded once to float32 (double
 * accumulation), and WGSL has neither f64 nor a correctly rounded division, so a GPU reduction
 * could move shift/scale by an ulp and flip a code. Downloading the values is needed anyway for
 * the TensorUpdate; the codes go back up (one i32 each) for the EF subtraction.
 */
import { Data, Effect } from "effect"
import { grid1d, type Engine, type Tensor } from "@covenant/gpu-webgpu"
import { clipFactors, lowerMedian, peerNorm } from "../aggregate.ts"
import { CodecError } from "../errors.ts"
import { clampK } from "@covenant/dsl"
import { layoutOf, type TensorLayout } from "../layout.ts"
import { checkParams, type SparseLoCoParams } from "../params.ts"
import { dequantTable, quantize } from "../quantize.ts"
import type { TensorUpdate } from "../update.ts"
import { accumulateKernel, meanKernel, scatterKernel, topkKernel } from "./kernels.ts"

/** Why the GPU codec could not run: a tensor it cannot take, or a device failure. */
export class GpuCodecError extends Data.TaggedError("GpuCodecError")<{
  readonly reason: "BadTensor" | "Backend"
  readonly message: string
}> {}

const backendFailure = (what: string) => (e: unknown) => new GpuCodecError({ reason: "Backend", message: `${what}: ${String(e)}` })
/** Kernel dispatch and allocation throw (BackendError, TensorError); they become typed failures. */
const gpu = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: backendFailure(what) })
const gpuAsync = <A>(what: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: backendFailure(what) })

const badTensor = (message: string) => Effect.fail(new GpuCodecError({ reason: "BadTensor", message }))

const checkTensor = (t: Tensor, numel: number, what: string, engine: Engine): Effect.Effect<void, GpuCodecError> => {
  if (t.isDisposed) return badTensor(`${what}: tensor was disposed`)
  if (t.rt.backend !== engine.backend) return badTensor(`${what}: tensor belongs to another engine`)
  if (t.dtype !== "f32" || t.size !== numel) return badTensor(`${what}: expected ${numel} f32 values, got ${t.size} ${t.dtype}`)
  return Effect.void
}

/** Chunk geometry as the kernels take it (1-D: one block row of width n per chunk). */
const geometry = (l: TensorLayout) =>
  l.edges.length === 2
    ? { X: l.blocksPerRow, h: l.edges[0]!, w: l.edges[1]!, cols: l.cols }
    : { X: 1, h: 1, w: l.totalk, cols: l.totalk }

const dqParams = (dq: Float32Array) => ({ d0: dq[0] ?? 0, d1: dq[1] ?? 0, d2: dq[2] ?? 0, d3: dq[3] ?? 0 })

/** Temporary device tensors, disposed when the scope closes, also on failure. */
const scopedTensor = (what: string, make: () => Tensor) =>
  Effect.acquireRelease(gpu(what, make), (t) => Effect.sync(() => t.dispose()))

/** One tensor of a batch: its EF buffer (updated in place) and pseudo-gradient on the device. */
export interface GpuTensorStep {
  readonly ef: Tensor
  readonly delta: Tensor
  readonly shape: readonly number[]
  readonly name?: string
}

/** A step with its layout, clamped k and where its entries sit in the batch's buffers. */
interface Plan extends GpuTensorStep {
  readonly name: string
  readonly l: TensorLayout
  readonly k: number
  readonly g: ReturnType<typeof geometry>
  readonly at: number
  readonly n: number
  /** Codec chunks per storage binding of ef/delta. */
  readonly perBinding: number
}

/**
 * A tensor over the binding limit is stored by the engine in several bindings of whole rows.
 * The kernels run binding by binding, which needs every binding to hold whole block rows
 * (h dense rows: a multiple of the 64-row blocks for the usual power-of-two sizes); other
 * splits are refused rather than mis-indexed.
 */
const codecChunksPerBinding = (s: GpuTensorStep, l: TensorLayout, name: string): Effect.Effect<number, GpuCodecError> => {
  const { ef, delta } = s
  if (ef.chunks === 1 && delta.chunks === 1) return Effect.succeed(l.nChunks)
  const g = geometry(l)
  const blockRow = g.h * g.cols
  if (ef.chunkElems !== delta.chunkElems || ef.chunkElems % blockRow !== 0) {
    return badTensor(`${name}: its storage bindings (${ef.chunkElems} / ${delta.chunkElems} values) do not hold whole block rows of ${blockRow}`)
  }
  return Effect.succeed((ef.chunkElems / blockRow) * g.X)
}

/** The storage bindings of a planned tensor: binding b holds codec chunks c0 .. c0+nb-1. */
const bindingsOf = (t: Plan): Array<{ readonly b: number; readonly c0: number; readonly nb: number }> =>
  Array.from({ length: t.ef.chunks }, (_, b) => ({ b, c0: b * t.perBinding, nb: Math.min(t.perBinding, t.l.nChunks - b * t.perBinding) }))

/**
 * One miner step for a batch of tensors on the device: each `ef` (updated in place) and `delta`
 * are f32 tensors of `shape` on `engine`. Produces the same TensorUpdates as `compress` on the
 * same values and leaves every `ef` equal to its EF buffer bit for bit.
 *
 * Batched so a model costs one device round trip, not one per tensor: the EF/top-k kernels of
 * all tensors are queued, the selected entries of all come down in one download, and the EF
 * subtractions go up with one upload of the codes (one per group of tensors whose entries fill
 * a storage binding, for models beyond the binding limit / 8 selected entries). On a NonFinite
 * failure no subtraction has been applied: every `ef` of the batch holds its ef_mid (the caller
 * should zero them).
 */
export const compressGpuMany = (
  engine: Engine,
  steps: readonly GpuTensorStep[],
  params: SparseLoCoParams,
): Effect.Effect<TensorUpdate[], CodecError | GpuCodecError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const p = yield* checkParams(params)
      // The batch's selection buffers must each fit one storage binding (the kernels bind one):
      // tensors are grouped so a group's 2 i32 per entry stay under the limit.
      const maxEntries = Math.floor(engine.backend.maxBindingBytes / 8)
      const groups: Plan[][] = []
      let group: Plan[] = []
      let total = 0
      for (const s of steps) {
        const name = s.name ?? ""
        const l = yield* layoutOf(s.shape, p.chunk)
        yield* checkTensor(s.ef, l.numel, `${name} ef`, engine)
        yield* checkTensor(s.delta, l.numel, `${name} delta`, engine)
        const perBinding = yield* codecChunksPerBinding(s, l, name)
        const k = clampK(p.topk, l.totalk)
        const n = l.nChunks * k
        if (n > maxEntries) return yield* badTensor(`${name}: ${n} selected entries exceed one storage binding`)
        if (total + n > maxEntries) {
          groups.push(group)
          group = []
          total = 0
        }
        group.push({ ...s, name, l, k, g: geometry(l), at: total, n, perBinding })
        total += n
      }
      groups.push(group)
      const beta = Math.fround(p.efDecay)
      const selected = []
      // every group's selection and statistics first, so a NonFinite failure leaves every ef at ef_mid
      for (const plans of groups) {
        const first = plans[0]
        if (first === undefined) continue
        const rt = first.ef.rt
        const groupTotal = plans.reduce((a, t) => a + t.n, 0)
        // sel[0..total) local indices, sel[total..2*total) value bits, tensors one after another
        const sel = yield* scopedTensor("alloc selection", () => rt.empty([2 * groupTotal], "i32"))
        yield* gpu("ef and top-k", () => {
          for (const t of plans) {
            for (const { b, c0, nb } of bindingsOf(t)) {
              rt.run(
                topkKernel,
                { delta: t.delta.binding(b), ef: t.ef.binding(b), sel: sel.binding() },
                { nChunks: nb, ...t.g, totalk: t.l.totalk, k: t.k, beta, zero: 0, at: t.at + c0 * t.k, total: groupTotal },
                grid1d(nb, 1),
              )
            }
          }
        })
        const selBytes = yield* gpuAsync("download selection", () => rt.backend.download(sel.storage.buf, 0, 8 * groupTotal))
        const idx = new Int32Array(selBytes, 0, groupTotal)
        const vals = new Float32Array(selBytes, 4 * groupTotal, groupTotal)
        const codes = new Uint8Array(groupTotal)
        const updates: TensorUpdate[] = []
        for (const t of plans) {
          const tCodes = codes.subarray(t.at, t.at + t.n)
          const stats = quantize(vals.subarray(t.at, t.at + t.n), t.n, tCodes, p.quantBins, p.quantRange)
          if (!Number.isFinite(stats.shift) || !stats.lookup.every(Number.isFinite)) {
            return yield* Effect.fail(new CodecError({ reason: "NonFinite", message: `${t.name}: non-finite values in the error-feedback buffer` }))
          }
          const indices = Uint16Array.from(idx.subarray(t.at, t.at + t.n))
          updates.push({ name: t.name, shape: [...t.shape], chunk: p.chunk, kEff: t.k, indices, codes: tCodes.slice(), ...stats })
        }
        selected.push({ plans, sel, codes, updates })
      }
      for (const { plans, sel, codes, updates } of selected) {
        const codesT = yield* scopedTensor("upload codes", () => engine.fromArray(Int32Array.from(codes), [codes.length]))
        yield* gpu("ef subtraction", () =>
          plans.forEach((t, i) => {
            const dq = dqParams(dequantTable(updates[i]!))
            for (const { b, c0, nb } of bindingsOf(t)) {
              t.ef.rt.run1d(
                scatterKernel,
                { idx: sel.binding(), codes: codesT.binding(), dense: t.ef.binding(b) },
                { n: nb * t.k, at: t.at + c0 * t.k, k: t.k, ...t.g, sub: 1, ...dq },
                nb * t.k,
              )
            }
          }),
        )
      }
      return selected.flatMap((s) => s.updates)
    }),
  )

/** `compressGpuMany` for one tensor; after a NonFinite failure `ef` holds ef_mid, as with `compress`. */
export const compressGpu = (
  engine: Engine,
  ef: Tensor,
  delta: Tensor,
  shape: readonly number[],
  params: SparseLoCoParams,
  name = "",
): Effect.Effect<TensorUpdate, CodecError | GpuCodecError> =>
  Effect.map(compressGpuMany(engine, [{ ef, delta, shape, name }], params), (us) => us[0]!)

/**
 * Dense decode of one update into a new device tensor of its shape (the reference's
 * transmit_grad, as `decompress`): zeros, then every entry's lookup[code] + shift at its position.
 */
export const decompressGpu = (engine: Engine, u: TensorUpdate): Effect.Effect<Tensor, CodecError | GpuCodecError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const l = yield* layoutOf(u.shape, u.chunk)
      const n = l.nChunks * u.kEff
      const dq = dequantTable(u)
      if (u.indices.length !== n || u.codes.length !== n || dq.length > 4) {
        return yield* Effect.fail(new CodecError({ reason: "LengthMismatch", message: `${u.name}: update lengths do not match its shape` }))
      }
      // Checked here because the kernel masks codes to 2 bits and trusts indices.
      if (u.indices.some((j) => j >= l.totalk) || u.codes.some((q) => q >= dq.length)) {
        return yield* Effect.fail(new CodecError({ reason: "LengthMismatch", message: `${u.name}: index or code out of range` }))
      }
      const out = yield* gpu("alloc output", () => engine.zeros([...u.shape]))
      // decode and aggregate outputs are fresh tensors: the multi-binding path is compress-only
      if (out.chunks !== 1) {
        out.dispose()
        return yield* badTensor(`${u.name}: ${l.numel} values exceed one storage binding`)
      }
      if (n === 0) return out
      const idxT = yield* scopedTensor("upload indices", () => engine.fromArray(Int32Array.from(u.indices), [n]))
      const codesT = yield* scopedTensor("upload codes", () => engine.fromArray(Int32Array.from(u.codes), [n]))
      yield* gpu("scatter", () =>
        out.rt.run1d(
          scatterKernel,
          { idx: idxT.binding(), codes: codesT.binding(), dense: out.binding() },
          { n, at: 0, k: u.kEff, ...geometry(l), sub: 0, ...dqParams(dq) },
          n,
        ),
      ).pipe(Effect.tapError(() => Effect.sync(() => out.dispose())))
      return out
    }),
  )

export interface AggregatedGpu {
  /** The dense aggregate on the device (the caller disposes it). */
  readonly dense: Tensor
  readonly norms: Float32Array
  readonly median: number
  readonly factors: Float32Array
}

/**
 * The receiver's median-clipped aggregation of one tensor (as `aggregate`) into a device tensor,
 * for a peer whose outer optimizer runs on the GPU. Norms and clip factors come from the CPU
 * functions (they need only the codes and four table values per peer); the per-coordinate sums
 * run on the device in peer order, then the division by the number of peers that selected each
 * coordinate. The division is the one step WGSL does not require to be correctly rounded (2.5
 * ulp allowed): bit-equal to `aggregate` where the device's f32 division is IEEE (lavapipe,
 * tested), within that bound at coordinates selected by several peers elsewhere.
 */
export const aggregateGpu = (engine: Engine, updates: readonly TensorUpdate[]): Effect.Effect<AggregatedGpu, CodecError | GpuCodecError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const first = updates[0]
      const fail = (reason: CodecError["reason"], message: string) => Effect.fail(new CodecError({ reason, message }))
      if (first === undefined) return yield* fail("NoPeers", "no updates to aggregate")
      const l = yield* layoutOf(first.shape, first.chunk)
      let total = 0
      for (const u of updates) {
        if (u.chunk !== first.chunk || u.shape.length !== first.shape.length || u.shape.some((d, i) => d !== first.shape[i])) {
          return yield* fail("PeerMismatch", `${first.name}: peers disagree on shape or chunk`)
        }
        const n = l.nChunks * u.kEff
        if (u.kEff < 1 || u.kEff > l.totalk || u.indices.length !== n || u.codes.length !== n || u.lookup.length > 4) {
          return yield* fail("LengthMismatch", `${first.name}: a peer's update lengths do not match the shape`)
        }
        // checked here because the kernel masks codes to 2 bits and trusts indices
        if (u.indices.some((j) => j >= l.totalk) || u.codes.some((q) => q >= u.lookup.length)) {
          return yield* fail("LengthMismatch", `${first.name}: index or code out of range`)
        }
        total += n
      }
      const norms = Float32Array.from(updates, peerNorm)
      const factors = clipFactors(norms)
      const idx = new Int32Array(total)
      const codes = new Int32Array(total)
      const at: number[] = []
      let o = 0
      for (const u of updates) {
        at.push(o)
        idx.set(u.indices, o)
        codes.set(u.codes, o)
        o += u.indices.length
      }
      const dense = yield* gpu("alloc output", () => engine.zeros([...first.shape]))
      const run = Effect.gen(function* () {
        if (dense.chunks !== 1) return yield* badTensor(`${first.name}: ${l.numel} values exceed one storage binding`)
        const idxT = yield* scopedTensor("upload indices", () => engine.fromArray(idx, [total]))
        const codesT = yield* scopedTensor("upload codes", () => engine.fromArray(codes, [total]))
        const cntT = yield* scopedTensor("alloc counts", () => engine.fromArray(new Int32Array(l.numel), [l.numel]))
        const badT = yield* scopedTensor("alloc flag", () => engine.fromArray(new Int32Array(1), [1]))
        const g = geometry(l)
        yield* gpu("accumulate", () => {
          updates.forEach((u, p) => {
            const scaled = dequantTable(u).map((v) => v * factors[p]!)
            dense.rt.run1d(
              accumulateKernel,
              { idx: idxT.binding(), codes: codesT.binding(), sum: dense.binding(), cnt: cntT.binding() },
              { n: u.indices.length, at: at[p]!, k: u.kEff, ...g, ...dqParams(scaled) },
              u.indices.length,
            )
          })
          dense.rt.run1d(meanKernel, { cnt: cntT.binding(), sum: dense.binding(), bad: badT.binding() }, { n: l.numel }, l.numel)
        })
        const bad = new Int32Array(yield* gpuAsync("download flag", () => engine.backend.download(badT.storage.buf, 0, 4)))
        if (bad[0] !== 0) return yield* fail("NonFinite", `${first.name}: non-finite aggregate; the round is rejected for this tensor`)
        return { dense, norms, median: lowerMedian(norms), factors }
      })
      return yield* run.pipe(Effect.tapError(() => Effect.sync(() => dense.dispose())))
    }),
  )
