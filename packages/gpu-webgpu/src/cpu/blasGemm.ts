/**
 * The fast CPU backend's gemm through the machine's OpenBLAS (`cblas_sgemm` by bun:ffi), where
 * one is installed (Debian: libopenblas0-pthread) and the runtime is Bun. OpenBLAS uses the
 * CPU's widest vectors and FMA (AVX-512 here), which WebAssembly's 128-bit SIMD cannot: on this
 * machine ~6x the wasm kernel per core. Operands whose strides BLAS cannot express go to the
 * wasm kernel. Same meaning as `WasmGemm.gemm`; results agree to fp32 rounding.
 *
 * COVENANT_BLAS_LIB names the library; COVENANT_BLAS=0 turns this path off.
 *
 * Products under COVENANT_BLAS_SMALL multiply-adds (default 2^24) run on one OpenBLAS thread:
 * OpenBLAS threads every product above ~2^18, and at the debug model's sizes waking its threads
 * can cost more than the arithmetic; on a shared machine, where they spin for a core, one debug
 * step took 395 ms with 2 threads against 117 ms with one (bench/profile-cpu.ts, same sitting,
 * loaded). The default was 2^22 until 2026-12-03: then its 2-thread lm_head products (2^23) were
 * what kept the debug model under PyTorch on the issue #15 command (2-thread: 0.86x best, 0.65x
 * median of 21 repeats; one thread below 2^24: 1.10x / 1.04x, bench/RESULTS.md), while the 25 M
 * model, whose per-head attention products (2^22) 2^24 puts on one thread, measured 483-530
 * tokens/s best against 437-590 at 2^22 (3 alternating runs each, load 1-2): no difference shown.
 * (On 2026-12-02, before the attention kernels changed, 2^24 had measured 107-111 against 123-165.)
 */
import { WasmGemm } from "./wasmGemm.ts"

/** What the fast kernels need from a gemm (WasmGemm and BlasGemm). */
export interface Gemm {
  readonly label: string
  gemm(
    A: Float32Array, offA: number, rsA: number, csA: number,
    B: Float32Array, offB: number, rsB: number, csB: number,
    C: Float32Array, offC: number, ldc: number,
    M: number, N: number, K: number, accumulate: boolean
  ): void
  close(): void
}

type Ptr = number & { readonly __pointer__: null }
interface Ffi {
  dlopen: (path: string, symbols: Record<string, { args: string[]; returns: string }>) => { symbols: Record<string, (...a: unknown[]) => unknown>; close(): void }
  ptr: (view: Float32Array, byteOffset?: number) => Ptr
}

const ROW_MAJOR = 101
const NO_TRANS = 111
const TRANS = 112

const candidates = (): string[] => {
  const env = process.env["COVENANT_BLAS_LIB"]
  return env !== undefined && env !== ""
    ? [env]
    : ["libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "/usr/lib/aarch64-linux-gnu/libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"]
}

interface Loaded {
  readonly path: string
  readonly sgemm: (...a: unknown[]) => unknown
  readonly setThreads: ((n: number) => unknown) | null
  readonly ptr: Ffi["ptr"]
}

let loaded: Loaded | null | undefined
/** The thread count last given to OpenBLAS (process-wide state of the library). */
let blasThreads = -1

const smallProduct = (): number => {
  const env = Number(process.env["COVENANT_BLAS_SMALL"])
  return Number.isFinite(env) && env >= 0 ? env : 2 ** 24
}

/** OpenBLAS through bun:ffi, or null (not Bun, no library, or COVENANT_BLAS=0). */
export const loadBlas = (): Loaded | null => {
  if (loaded !== undefined) return loaded
  loaded = null
  if (process.env["COVENANT_BLAS"] === "0" || typeof (globalThis as { Bun?: unknown }).Bun === "undefined") return loaded
  let ffi: Ffi
  try {
    ffi = (import.meta as unknown as { require: (m: string) => Ffi }).require("bun:ffi")
  } catch {
    return loaded
  }
  for (const path of candidates()) {
    try {
      const lib = ffi.dlopen(path, {
        cblas_sgemm: { args: ["i32", "i32", "i32", "i32", "i32", "i32", "f32", "ptr", "i32", "ptr", "i32", "f32", "ptr", "i32"], returns: "void" }
      })
      let setThreads: Loaded["setThreads"] = null
      try {
        setThreads = ffi.dlopen(path, { openblas_set_num_threads: { args: ["i32"], returns: "void" } }).symbols["openblas_set_num_threads"]!
      } catch {
        setThreads = null
      }
      loaded = { path, sgemm: lib.symbols["cblas_sgemm"]!, setThreads, ptr: ffi.ptr }
      return loaded
    } catch {
      // next candidate
    }
  }
  return loaded
}

export class BlasGemm implements Gemm {
  readonly label: string
  private readonly blas: Loaded
  private readonly fallback: WasmGemm
  private readonly threads: number
  /** Products of fewer multiply-adds than this run on one thread. */
  private readonly small = smallProduct()

  /** Throws when no BLAS loads; check `BlasGemm.available()` first. */
  constructor(threads: number, fallback: WasmGemm) {
    const blas = loadBlas()
    if (blas === null) throw new Error("no OpenBLAS library could be loaded")
    this.blas = blas
    this.fallback = fallback
    this.threads = blas.setThreads === null ? 1 : threads
    this.label = `openblas ${blas.path}, ${threads} thread${threads > 1 ? "s" : ""}${threads > 1 ? ` from ${this.small} multiply-adds` : ""}`
  }

  static available(): boolean {
    return loadBlas() !== null
  }

  close(): void {
    this.fallback.close()
  }

  gemm(
    A: Float32Array, offA: number, rsA: number, csA: number,
    B: Float32Array, offB: number, rsB: number, csB: number,
    C: Float32Array, offC: number, ldc: number,
    M: number, N: number, K: number, accumulate: boolean
  ): void {
    if (M === 0 || N === 0) return
    // row-major op(A) [M,K]: A stored [M,K] (csA 1, lda rsA >= K) or [K,M] (rsA 1, lda csA >= M)
    const aN = csA === 1 && rsA >= Math.max(1, K)
    const aT = !aN && rsA === 1 && csA >= Math.max(1, M)
    const bN = csB === 1 && rsB >= Math.max(1, N)
    const bT = !bN && rsB === 1 && csB >= Math.max(1, K)
    if (K === 0 || !(aN || aT) || !(bN || bT) || ldc < Math.max(1, N)) {
      this.fallback.gemm(A, offA, rsA, csA, B, offB, rsB, csB, C, offC, ldc, M, N, K, accumulate)
      return
    }
    const { sgemm, ptr, setThreads } = this.blas
    const want = M * N * K < this.small ? 1 : this.threads
    if (want !== blasThreads && setThreads !== null) {
      setThreads(want)
      blasThreads = want
    }
    sgemm(
      ROW_MAJOR, aN ? NO_TRANS : TRANS, bN ? NO_TRANS : TRANS, M, N, K, 1,
      ptr(A, offA * 4), aN ? rsA : csA,
      ptr(B, offB * 4), bN ? rsB : csB,
      accumulate ? 1 : 0,
      ptr(C, offC * 4), ldc
    )
  }
}
