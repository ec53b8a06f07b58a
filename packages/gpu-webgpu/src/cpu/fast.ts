/**
 * The fast CPU backend: the reference backend's buffers and chunking, with some kernels run by
 * faster implementations of the same meaning (looked up by kernel name). Every other kernel runs
 * its CPU reference, so the two backends differ only where a fast kernel exists, and every fast
 * kernel is tested against the reference in test/cpuFast.test.ts.
 *
 * Fast kernels: every matmul variant through a gemm: the machine's OpenBLAS via bun:ffi where it
 * loads (src/cpu/blasGemm.ts), else a WebAssembly SIMD micro-kernel on packed panels split over
 * worker threads (src/cpu/wasmGemm.ts); the three attention kernels as gemms over [T,T] score blocks
 * with their softmax in WebAssembly SIMD (src/cpu/fastAttention.ts, src/cpu/wasmSoftmax.ts),
 * straight loops and SIMD add/sub/mul for the hottest element-wise kernels
 * (src/cpu/fastElementwise.ts, src/cpu/wasmBinary.ts, bitwise equal to their references), the
 * exp-bound kernels (swiglu, cross-entropy) around a WebAssembly SIMD exp (src/cpu/fastExpKernels.ts,
 * src/cpu/wasmExp.ts), and rmsnorm and AdamW in SIMD (src/cpu/wasmRmsnorm.ts, src/cpu/wasmAdamw.ts).
 * Matmul, attention, the exp-bound kernels, rmsnorm and AdamW agree with the reference to fp32
 * rounding (summation order differs, the arithmetic is f32), not bitwise.
 */
import { availableParallelism } from "node:os"
import type { BackendFeatures, BufferId, CpuViews, Dispatch, KernelParams } from "../backend.ts"
import { attentionGradKVKernel, attentionGradQKernel, attentionKernel } from "../ops/attention.ts"
import { matmulKernels, type MatmulParam } from "../ops/matmul.ts"
import { CpuBackend } from "./backend.ts"
import { elementwiseFast } from "./fastElementwise.ts"
import { type FastKernel, fastFor } from "./fastKernel.ts"
import { attentionFast, attentionGradFast, DispatchClock } from "./fastAttention.ts"
import { WasmGemm } from "./wasmGemm.ts"
import { WasmExp } from "./wasmExp.ts"
import { WasmSoftmax } from "./wasmSoftmax.ts"
import { rmsnormKernelsFast, WasmRmsnorm } from "./wasmRmsnorm.ts"
import { WasmBinary } from "./wasmBinary.ts"
import { adamwFast, WasmAdamw } from "./wasmAdamw.ts"
import { expKernelsFast } from "./fastExpKernels.ts"
import { BlasGemm, type Gemm } from "./blasGemm.ts"

const matmulFast = (gemm: Gemm) => (views: CpuViews, p: KernelParams<MatmulParam>): void => {
  const A = views.f32("A")
  const B = views.f32("B")
  const C = views.f32("C")
  for (let bt = 0; bt < p.batches; bt++) {
    gemm.gemm(
      A, p.offA + bt * p.bsA, p.rsA, p.csA,
      B, p.offB + bt * p.bsB, p.rsB, p.csB,
      C, p.offC + bt * p.bsC, p.ldc,
      p.M, p.N, p.K, p.acc !== 0
    )
  }
}

export const fastKernels = (gemm: Gemm, clock: DispatchClock): Map<string, FastKernel> => {
  const mm = matmulFast(gemm)
  const exp = new WasmExp()
  const simd = { exp, softmax: new WasmSoftmax() }
  const grad = attentionGradFast(gemm, simd, clock)
  return new Map([
    ...matmulKernels.map((k) => fastFor(k, mm)),
    fastFor(attentionKernel, attentionFast(gemm, simd)),
    fastFor(attentionGradQKernel, grad.q),
    fastFor(attentionGradKVKernel, grad.kv),
    ...elementwiseFast(new WasmBinary()),
    ...expKernelsFast(exp, simd.softmax),
    ...rmsnormKernelsFast(new WasmRmsnorm()),
    adamwFast(new WasmAdamw())
  ])
}

/** Threads for the gemm: COVENANT_CPU_THREADS, else the machine's cores (at most 8). */
export const defaultCpuThreads = (): number => {
  const env = Number(process.env["COVENANT_CPU_THREADS"])
  return Number.isInteger(env) && env >= 1 ? env : Math.min(8, availableParallelism())
}

/** Bytes of freed chunks the fast backend keeps for reuse. */
const MAX_POOLED_BYTES = 256 * 1024 * 1024

export class FastCpuBackend extends CpuBackend {
  override readonly name: string
  /**
   * None: its fast kernels replace the f32 and shared-memory kernels, so the f16 and subgroup
   * variants would run only as slow references (the ops keep to the fast ones).
   */
  override readonly features: BackendFeatures = { shaderF16: false, subgroups: false }
  private readonly fast: Map<string, FastKernel>
  private readonly gemm: Gemm
  /** Bumped on every dispatch, upload and free (the attention backward's cache checks it). */
  private readonly clock = new DispatchClock()

  /** Whether this JavaScript engine can run the fast kernels (WebAssembly SIMD). */
  static supported(): boolean {
    return WasmGemm.supported()
  }

  /**
   * `threads` > 1 splits each large gemm over threads (OpenBLAS's, or wasm workers on a shared
   * memory). `gemm`: "blas" (the machine's OpenBLAS where it loads, else wasm) or "wasm".
   */
  constructor(maxBindingBytes?: number, threads: number = defaultCpuThreads(), gemm: "blas" | "wasm" = "blas") {
    super(maxBindingBytes)
    const useBlas = gemm === "blas" && BlasGemm.available()
    // with BLAS the wasm kernel only takes odd strides: one thread is plenty
    const t = !useBlas && threads > 1 && WasmGemm.supported(threads) ? threads : 1
    const wasm = new WasmGemm(t)
    this.gemm = useBlas ? new BlasGemm(threads, wasm) : wasm
    this.fast = fastKernels(this.gemm, this.clock)
    this.name = `cpu-fast (${this.gemm.label})`
  }

  override destroy(): void {
    this.gemm.close()
    super.destroy()
    this.pool.clear()
    this.pooledBytes = 0
  }

  /** Chunks given back, by byte size, for the next alloc of that size (as the WebGPU backend pools). */
  private readonly pool = new Map<number, ArrayBuffer[]>()
  private pooledBytes = 0

  /** A pooled chunk of that size when there is one: contents are what it held (`empty` is uninitialised). */
  protected override makeChunk(bytes: number): ArrayBuffer {
    const free = this.pool.get(bytes)
    const chunk = free?.pop()
    if (chunk === undefined) return super.makeChunk(bytes)
    this.pooledBytes -= bytes
    return chunk
  }

  protected override dropChunk(chunk: ArrayBuffer): void {
    if (this.pooledBytes + chunk.byteLength > MAX_POOLED_BYTES) return
    const free = this.pool.get(chunk.byteLength)
    if (free === undefined) this.pool.set(chunk.byteLength, [chunk])
    else free.push(chunk)
    this.pooledBytes += chunk.byteLength
  }

  override upload(buf: BufferId, data: Float32Array | Int32Array | Uint32Array, byteOffset = 0): void {
    this.clock.n++
    super.upload(buf, data, byteOffset)
  }

  override free(buf: BufferId): void {
    this.clock.n++
    super.free(buf)
  }

  override run(d: Dispatch): void {
    this.clock.n++
    const f = this.fast.get(d.kernel.name)
    if (f === undefined) super.run(d)
    else f(this.views(d), d.params)
  }
}
