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
import { CodecError } from "../errors.ts"
import { clampK, layoutOf, type TensorLayout } from "../layout.ts"
import { checkParams, type SparseLoCoParams } from "../params.ts"
import { dequantTable, quantize } from "../quantize.ts"
import type { TensorUpdate } from "../update.ts"
import { scatterKernel, topkKernel } from "./kernels.ts"

/** Why the GPU codec could not run: a tensor it cannot take, or a device failure. */
export class GpuCodecError extends Data.TaggedError("GpuCodecError")<{
  readonly reason: "BadTensor" | "Backend"
  readonly message: string
}> {}

const backendFailure = (what: string) => (e: unknown) => new GpuCodecError({ reason: "Backend", message: `${what}: ${String(e)}` })
/** Kernel dispatch and allocation throw (BackendError, TensorError); they become typed failures. */
const gpu = <A>(what: string, f: () => A) => Effect.try({ try: f, catch: backendFailure(what) })
const gpuAsync = <A>(what: string, f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: backendFailure(what) })

/**
 * The kernels bind a tensor as one storage binding; a tensor the engine split into chunks (over
 * the binding limit: 128 MiB on lavapipe, more on real GPUs) is refused rather than mis-indexed.
 */
const checkTensor = (t: Tensor, numel: number, what: string, engine: Engine): Effect.Effect<void, GpuCodecError> => {
  const bad = (message: string) => Effect.fail(new GpuCodecError({ reason: "BadTensor", message: `${what}: ${message}` }))
  if (t.isDisposed) return bad("tensor was disposed")
  if (t.rt.backend !== engine.backend) return bad("tensor belongs to another engine")
  if (t.dtype !== "f32" || t.size !== numel) return bad(`expected ${numel} f32 values, got ${t.size} ${t.dtype}`)
  if (t.chunks !== 1) return bad(`${t.size} values exceed one storage binding (${engine.backend.maxBindingBytes} bytes)`)
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

/**
 * One miner step for one tensor on the device: `ef` (updated in place) and `delta` are f32
 * tensors of `shape` on `engine`. Produces the same TensorUpdate as `compress` on the same
 * values, and leaves `ef` equal to its EF buffer bit for bit. After a NonFinite failure `ef`
 * holds ef_mid, as with `compress`.
 */
export const compressGpu = (
  engine: Engine,
  ef: Tensor,
  delta: Tensor,
  shape: readonly number[],
  params: SparseLoCoParams,
  name = "",
): Effect.Effect<TensorUpdate, CodecError | GpuCodecError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const p = yield* checkParams(params)
      const l = yield* layoutOf(shape, p.chunk)
      yield* checkTensor(ef, l.numel, `${name} ef`, engine)
      yield* checkTensor(delta, l.numel, `${name} delta`, engine)
      const k = clampK(p.topk, l.totalk)
      const n = l.nChunks * k
      const g = geometry(l)
      const rt = ef.rt
      const idxT = yield* scopedTensor("alloc indices", () => rt.empty([n], "i32"))
      const valsT = yield* scopedTensor("alloc values", () => rt.empty([n], "f32"))
      yield* gpu("ef and top-k", () =>
        rt.run(
          topkKernel,
          { delta: delta.binding(), ef: ef.binding(), idx: idxT.binding(), vals: valsT.binding() },
          { nChunks: l.nChunks, ...g, totalk: l.totalk, k, beta: Math.fround(p.efDecay), zero: 0 },
          grid1d(l.nChunks, 1),
        )
      )
      const [idxBytes, valsBytes] = yield* gpuAsync("download selection", () =>
        Promise.all([rt.backend.download(idxT.storage.buf, 0, n * 4), rt.backend.download(valsT.storage.buf, 0, n * 4)]),
      )
      const vals = new Float32Array(valsBytes)
      const codes = new Uint8Array(n)
      const stats = quantize(vals, n, codes, p.quantBins, p.quantRange)
      if (!Number.isFinite(stats.shift) || !stats.lookup.every(Number.isFinite)) {
        return yield* Effect.fail(new CodecError({ reason: "NonFinite", message: `${name}: non-finite values in the error-feedback buffer` }))
      }
      const codesT = yield* scopedTensor("upload codes", () => engine.fromArray(Int32Array.from(codes), [n]))
      yield* gpu("ef subtraction", () =>
        rt.run1d(
          scatterKernel,
          { idx: idxT.binding(), codes: codesT.binding(), dense: ef.binding() },
          { n, k, ...g, sub: 1, ...dqParams(dequantTable(stats)) },
          n,
        ),
      )
      const indices = Uint16Array.from(new Int32Array(idxBytes))
      return { name, shape: [...shape], chunk: p.chunk, kEff: k, indices, codes, ...stats }
    }),
  )

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
      if (out.chunks !== 1) {
        out.dispose()
        return yield* Effect.fail(new GpuCodecError({ reason: "BadTensor", message: `${u.name}: ${l.numel} values exceed one storage binding` }))
      }
      if (n === 0) return out
      const idxT = yield* scopedTensor("upload indices", () => engine.fromArray(Int32Array.from(u.indices), [n]))
      const codesT = yield* scopedTensor("upload codes", () => engine.fromArray(Int32Array.from(u.codes), [n]))
      yield* gpu("scatter", () =>
        out.rt.run1d(
          scatterKernel,
          { idx: idxT.binding(), codes: codesT.binding(), dense: out.binding() },
          { n, k: u.kEff, ...geometry(l), sub: 0, ...dqParams(dq) },
          n,
        ),
      ).pipe(Effect.tapError(() => Effect.sync(() => out.dispose())))
      return out
    }),
  )
