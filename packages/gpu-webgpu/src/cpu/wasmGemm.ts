/**
 * A WebAssembly SIMD (128-bit) matrix-multiply micro-kernel, emitted as bytes here (no build
 * step, no compiler dependency), and the packing around it.
 *
 * The kernel computes C[Mp, Np] (+)= A·B over one K block for operands packed in panels:
 * A as [Mp/4][K][4] (four rows interleaved per k) and B as [Np/8][K][8] (eight columns per k),
 * so its k loop reads two sequential streams. Each 4x8 block of C lives in eight f32x4
 * accumulators (4 rows x 2 vectors). Loops: column strip of 8 (outer), row block of 4, k
 * (inner); the B strip of one K block (KC x 8 floats) stays in L1 while all row blocks pass.
 *
 * `gemm` below packs arbitrary strided operands (transposes are strides), runs the kernel over
 * K blocks and writes or adds the result into C with its own stride. Summation order differs
 * from the reference kernel (per K block, then blocks in order), so results agree to fp32
 * rounding, not bitwise.
 */
import type { Gemm } from "./blasGemm.ts"
import { uleb, str, section, vec, I32, V128, get, set, tee, i32c, add, sub, mul, ltU, loop, block, end, brIf, ifThen, elseOp, f32load, v128load, v128store, v128zero, splat, fadd, fmul } from "./wasmEncoding.ts"


const MR = 4
const NR = 8

/** Pages the shared memory of the threaded kernel may grow to (2 GiB). */
export const MAX_PAGES = 32768

/**
 * The module's bytes: imports memory env.mem (shared, for worker threads, when `shared`),
 * exports gemm(a, b, c, M, N, K, k0, kc, acc, j0, j1) over the column strips [j0, j1) of C.
 */
export const gemmModuleBytes = (shared = false): Uint8Array => {
  // params
  const [a, b, c, M, N, K, k0, kc, accFlag, j0, j1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  // i32 locals
  const [jb, ib, k, pa, pb, pc, rowBytes, pr] = [11, 12, 13, 14, 15, 16, 17, 18]
  // v128 locals: accumulators acc(r, v) = V0 + r*2 + v, then b0, b1, av
  const V0 = 19
  const acc = (r: number, v: number) => V0 + r * 2 + v
  const bv = (v: number) => V0 + MR * 2 + v
  const av = V0 + MR * 2 + 2
  const body: number[] = [
    ...get(N), ...i32c(4), ...mul, ...set(rowBytes),
    ...get(j0), ...set(jb),
    ...loop, // column strips
    ...i32c(0), ...set(ib),
    ...loop, // row blocks
    // pa = a + ib*K*4 + k0*16 ; pb = b + jb*K*4 + k0*32 ; pc = c + ib*rowBytes + jb*4
    ...get(a), ...get(ib), ...get(K), ...mul, ...i32c(4), ...mul, ...add, ...get(k0), ...i32c(MR * 4), ...mul, ...add, ...set(pa),
    ...get(b), ...get(jb), ...get(K), ...mul, ...i32c(4), ...mul, ...add, ...get(k0), ...i32c(32), ...mul, ...add, ...set(pb),
    ...get(c), ...get(ib), ...get(rowBytes), ...mul, ...add, ...get(jb), ...i32c(4), ...mul, ...add, ...set(pc),
    // accumulators: loaded from C when accumulating, else zero
    ...get(accFlag), ...ifThen,
    ...get(pc), ...set(pr),
    ...Array.from({ length: MR }, (_, r) => [
      ...get(pr), ...v128load(0), ...set(acc(r, 0)),
      ...get(pr), ...v128load(16), ...set(acc(r, 1)),
      ...get(pr), ...get(rowBytes), ...add, ...set(pr)
    ]).flat(),
    ...elseOp,
    ...Array.from({ length: MR * 2 }, (_, i) => [...v128zero, ...set(V0 + i)]).flat(),
    ...end,
    ...get(kc), ...set(k),
    ...loop, // k
    ...get(pb), ...v128load(0), ...set(bv(0)),
    ...get(pb), ...v128load(16), ...set(bv(1)),
    ...Array.from({ length: MR }, (_, r) => [
      ...get(pa), ...f32load(r * 4), ...splat, ...set(av),
      ...get(acc(r, 0)), ...get(av), ...get(bv(0)), ...fmul, ...fadd, ...set(acc(r, 0)),
      ...get(acc(r, 1)), ...get(av), ...get(bv(1)), ...fmul, ...fadd, ...set(acc(r, 1))
    ]).flat(),
    ...get(pa), ...i32c(MR * 4), ...add, ...set(pa),
    ...get(pb), ...i32c(32), ...add, ...set(pb),
    ...get(k), ...i32c(1), ...sub, ...tee(k), ...brIf(0),
    ...end,
    // store the block
    ...get(pc), ...set(pr),
    ...Array.from({ length: MR }, (_, r) => [
      ...get(pr), ...get(acc(r, 0)), ...v128store(0),
      ...get(pr), ...get(acc(r, 1)), ...v128store(16),
      ...get(pr), ...get(rowBytes), ...add, ...set(pr)
    ]).flat(),
    ...get(ib), ...i32c(MR), ...add, ...tee(ib), ...get(M), ...ltU, ...brIf(0),
    ...end,
    ...get(jb), ...i32c(NR), ...add, ...tee(jb), ...get(j1), ...ltU, ...brIf(0),
    ...end,
    ...end
  ]
  const locals = vec([[...uleb(8), I32], [...uleb(MR * 2 + 3), V128]])
  const func = [...locals, ...body]
  void block
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec(new Array(11).fill([I32])), 0x00]])),
    ...section(2, vec([[...str("env"), ...str("mem"), 0x02, ...(shared ? [0x03, ...uleb(1), ...uleb(MAX_PAGES)] : [0x00, ...uleb(1)])]])),
    ...section(3, vec([[0x00]])),
    ...section(7, vec([[...str("gemm"), 0x00, 0x00]])),
    ...section(10, vec([[...uleb(func.length), ...func]]))
  ])
}

export type GemmFn = (
  a: number, b: number, c: number, M: number, N: number, K: number, k0: number, kc: number, acc: number, j0: number, j1: number
) => void

/** K block length: one B strip of KC x 8 floats is 8 KiB. */
export const KC = 256
/** Column strips one thread claims at a time. */
export const STRIPS_PER_CLAIM = 4
/** Below this many multiply-adds a product runs on the calling thread only. */
const PARALLEL_MIN_MACS = 1 << 21

/**
 * The work loop every thread runs for one product: claim STRIPS_PER_CLAIM column strips at a time
 * from the shared counter `claim[0]` (dynamic, so a descheduled thread slows nobody down) and run
 * every K block over them. Job layout: [a, b, c, Mp, Np, K] (byte offsets, padded sizes).
 */
export const runStrips = (fn: GemmFn, claim: Int32Array, job: Int32Array): void => {
  const [a, b, c, Mp, Np, K] = [job[0]!, job[1]!, job[2]!, job[3]!, job[4]!, job[5]!]
  const strips = Np / NR
  for (;;) {
    const s0 = Atomics.add(claim, 0, STRIPS_PER_CLAIM)
    if (s0 >= strips) return
    const j0 = s0 * NR
    const j1 = Math.min(strips, s0 + STRIPS_PER_CLAIM) * NR
    for (let k0 = 0; k0 < K; k0 += KC) fn(a, b, c, Mp, Np, K, k0, Math.min(KC, K - k0), k0 > 0 ? 1 : 0, j0, j1)
  }
}

/**
 * Control block shared with one worker (Int32 slots): 0 = job sequence number (bumped by the
 * caller to start a job, -1 to stop), 1 = done flag (set by the worker), 2 = ready (set once the
 * worker has its kernel; a worker that never starts is never waited for).
 */
const SEQ = 0
const DONE = 1
const READY = 2

interface WorkerHandle {
  readonly worker: Worker
  readonly ctrl: Int32Array
}

/**
 * The kernel with its memory, packing and threads. With `threads` > 1 the memory is shared and
 * `threads - 1` workers (src/cpu/gemmWorker.ts) run column strips beside the calling thread,
 * which blocks (Atomics.wait) until they finish: `gemm` stays synchronous. Not reentrant; one
 * instance per backend.
 */
export class WasmGemm implements Gemm {
  readonly label: string
  private readonly mem: WebAssembly.Memory
  private readonly fn: GemmFn
  private f32: Float32Array
  private readonly workers: WorkerHandle[] = []
  /** [0]: strip claim counter; then the job (see runStrips). */
  private readonly shared: Int32Array
  private seq = 0

  constructor(readonly threads = 1) {
    const parallel = threads > 1
    this.label = `wasm simd, ${threads} thread${parallel ? "s" : ""}`
    this.mem = parallel ? new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial: 1 })
    const module = new WebAssembly.Module(gemmModuleBytes(parallel))
    const instance = new WebAssembly.Instance(module, { env: { mem: this.mem } })
    this.fn = instance.exports["gemm"] as GemmFn
    this.f32 = new Float32Array(this.mem.buffer)
    this.shared = new Int32Array(new SharedArrayBuffer(4 * 8))
    for (let t = 1; t < threads; t++) {
      const ctrl = new Int32Array(new SharedArrayBuffer(4 * 3))
      const worker = new Worker(new URL("./gemmWorker.ts", import.meta.url).href)
      worker.postMessage({ module, mem: this.mem, ctrl, shared: this.shared })
      ;(worker as { unref?: () => void }).unref?.()
      this.workers.push({ worker, ctrl })
    }
  }

  /** Whether this JavaScript engine runs WebAssembly SIMD (and, for threads, shared memory). */
  static supported(threads = 1): boolean {
    try {
      return WebAssembly.validate(gemmModuleBytes(threads > 1)) && (threads === 1 || typeof SharedArrayBuffer === "function")
    } catch {
      return false
    }
  }

  /** Workers that have started and take part in large products. */
  get readyWorkers(): number {
    return this.workers.filter((w) => Atomics.load(w.ctrl, READY) === 1).length
  }

  /** Stops the workers. */
  close(): void {
    for (const w of this.workers) {
      Atomics.store(w.ctrl, SEQ, -1)
      Atomics.notify(w.ctrl, SEQ)
      w.worker.terminate()
    }
    this.workers.length = 0
  }

  private ensure(floats: number): Float32Array {
    const bytes = floats * 4
    if (this.mem.buffer.byteLength < bytes) {
      const pages = Math.ceil((bytes - this.mem.buffer.byteLength) / 65536)
      if (this.mem.buffer.byteLength / 65536 + pages > MAX_PAGES) throw new RangeError(`gemm: ${bytes} bytes of packed operands exceed ${MAX_PAGES * 64} KiB`)
      this.mem.grow(pages)
    }
    if (this.f32.buffer !== this.mem.buffer || this.f32.length * 4 !== this.mem.buffer.byteLength) this.f32 = new Float32Array(this.mem.buffer)
    return this.f32
  }

  /** Runs the packed product on every thread. */
  private run(aAt: number, bAt: number, cAt: number, Mp: number, Np: number, K: number): void {
    const job = this.shared.subarray(1)
    job.set([aAt * 4, bAt * 4, cAt * 4, Mp, Np, K])
    Atomics.store(this.shared, 0, 0)
    const helpers = Mp * Np * K >= PARALLEL_MIN_MACS ? this.workers.filter((w) => Atomics.load(w.ctrl, READY) === 1) : []
    this.seq++
    for (const w of helpers) {
      Atomics.store(w.ctrl, DONE, 0)
      Atomics.store(w.ctrl, SEQ, this.seq)
      Atomics.notify(w.ctrl, SEQ)
    }
    runStrips(this.fn, this.shared, job)
    for (const w of helpers) while (Atomics.load(w.ctrl, DONE) === 0) Atomics.wait(w.ctrl, DONE, 0, 1000)
  }

  /**
   * C[offC + i*ldc + j] (+)= sum_k A[offA + i*rsA + k*csA] * B[offB + k*rsB + j*csB]
   * for i < M, j < N, k < K.
   */
  gemm(
    A: Float32Array, offA: number, rsA: number, csA: number,
    B: Float32Array, offB: number, rsB: number, csB: number,
    C: Float32Array, offC: number, ldc: number,
    M: number, N: number, K: number, accumulate: boolean
  ): void {
    if (M === 0 || N === 0) return
    if (K === 0) {
      if (!accumulate) for (let i = 0; i < M; i++) C.fill(0, offC + i * ldc, offC + i * ldc + N)
      return
    }
    const Mp = Math.ceil(M / MR) * MR
    const Np = Math.ceil(N / NR) * NR
    const aAt = 0
    const bAt = Mp * K
    const cAt = bAt + Np * K
    const m = this.ensure(cAt + Mp * Np)
    // pack A: [Mp/4][K][4]
    for (let i = 0; i < Mp; i++) {
      const dst = aAt + (i - (i % MR)) * K + (i % MR)
      if (i >= M) {
        for (let k = 0; k < K; k++) m[dst + k * MR] = 0
        continue
      }
      const src = offA + i * rsA
      if (csA === 1) for (let k = 0; k < K; k++) m[dst + k * MR] = A[src + k]!
      else for (let k = 0; k < K; k++) m[dst + k * MR] = A[src + k * csA]!
    }
    // pack B: [Np/8][K][8]
    if (csB === 1) {
      for (let j0 = 0; j0 < Np; j0 += NR) {
        const dst = bAt + j0 * K
        const w = Math.min(NR, N - j0)
        for (let k = 0; k < K; k++) {
          const src = offB + k * rsB + j0
          const d = dst + k * NR
          for (let j = 0; j < w; j++) m[d + j] = B[src + j]!
          for (let j = w; j < NR; j++) m[d + j] = 0
        }
      }
    } else {
      for (let j = 0; j < Np; j++) {
        const dst = bAt + (j - (j % NR)) * K + (j % NR)
        if (j >= N) {
          for (let k = 0; k < K; k++) m[dst + k * NR] = 0
          continue
        }
        const src = offB + j * csB
        if (rsB === 1) for (let k = 0; k < K; k++) m[dst + k * NR] = B[src + k]!
        else for (let k = 0; k < K; k++) m[dst + k * NR] = B[src + k * rsB]!
      }
    }
    this.run(aAt, bAt, cAt, Mp, Np, K)
    for (let i = 0; i < M; i++) {
      const dst = offC + i * ldc
      const src = cAt + i * Np
      if (accumulate) for (let j = 0; j < N; j++) C[dst + j] = C[dst + j]! + m[src + j]!
      else C.set(m.subarray(src, src + N), dst)
    }
  }
}
