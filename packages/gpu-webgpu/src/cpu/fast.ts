/**
 * The fast CPU backend: the reference backend's buffers and chunking, with some kernels run by
 * faster implementations of the same meaning (looked up by kernel name). Every other kernel runs
 * its CPU reference, so the two backends differ only where a fast kernel exists, and every fast
 * kernel is tested against the reference in test/cpuFast.test.ts.
 *
 * Fast kernels: every matmul variant through a gemm: the machine's OpenBLAS via bun:ffi where it
 * loads (src/cpu/blasGemm.ts), else a WebAssembly SIMD micro-kernel on packed panels split over
 * worker threads (src/cpu/wasmGemm.ts); the three attention kernels as gemms over [T,T] score blocks
 * (src/cpu/fastAttention.ts), and straight loops for the hottest element-wise kernels
 * (src/cpu/fastElementwise.ts, bitwise equal to their references). Matmul and attention agree with the reference to fp32 rounding (summation
 * order differs), not bitwise.
 */
import { availableParallelism } from "node:os"
import type { CpuViews, Dispatch } from "../backend.ts"
import { CpuBackend } from "./backend.ts"
import { elementwiseFast } from "./fastElementwise.ts"
import { attentionFast, attentionGradKVFast, attentionGradQFast } from "./fastAttention.ts"
import { WasmGemm } from "./wasmGemm.ts"
import { BlasGemm, type Gemm } from "./blasGemm.ts"

/** A fast implementation of a kernel's CPU reference (same bindings, params and meaning). */
export type FastKernel = (views: CpuViews, p: Readonly<Record<string, number>>) => void

const matmulFast = (gemm: Gemm): FastKernel => (views, p) => {
  const A = views.f32("A")
  const B = views.f32("B")
  const C = views.f32("C")
  const batches = p["batches"]!
  for (let bt = 0; bt < batches; bt++) {
    gemm.gemm(
      A, p["offA"]! + bt * p["bsA"]!, p["rsA"]!, p["csA"]!,
      B, p["offB"]! + bt * p["bsB"]!, p["rsB"]!, p["csB"]!,
      C, p["offC"]! + bt * p["bsC"]!, p["ldc"]!,
      p["M"]!, p["N"]!, p["K"]!, p["acc"]! !== 0
    )
  }
}

/** Kernel names that share the matmul params and meaning (src/ops/matmul.ts). */
export const MATMUL_KERNELS = ["matmul", "matmul_vec4_ak_bn", "matmul_vec4_ak_bk", "matmul_vec4_am_bn", "matmul_vec4_am_bk", "matmul_tiled"]

export const fastKernels = (gemm: Gemm): Map<string, FastKernel> => {
  const mm = matmulFast(gemm)
  return new Map([
    ...MATMUL_KERNELS.map((n) => [n, mm] as const),
    ["attention", attentionFast(gemm)],
    ["attentionGradQ", attentionGradQFast(gemm)],
    ["attentionGradKV", attentionGradKVFast(gemm)],
    ...elementwiseFast()
  ])
}

/** Threads for the gemm: COVENANT_CPU_THREADS, else the machine's cores (at most 8). */
export const defaultCpuThreads = (): number => {
  const env = Number(process.env["COVENANT_CPU_THREADS"])
  return Number.isInteger(env) && env >= 1 ? env : Math.min(8, availableParallelism())
}

export class FastCpuBackend extends CpuBackend {
  override readonly name: string
  private readonly fast: Map<string, FastKernel>
  private readonly gemm: Gemm

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
    this.fast = fastKernels(this.gemm)
    this.name = `cpu-fast (${this.gemm.label})`
  }

  override destroy(): void {
    this.gemm.close()
    super.destroy()
  }

  override run(d: Dispatch): void {
    const f = this.fast.get(d.kernel.name)
    if (f === undefined) super.run(d)
    else f(this.views(d), d.params)
  }
}
