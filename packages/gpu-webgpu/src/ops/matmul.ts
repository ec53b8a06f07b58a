/**
 * Batched matmul with transposed operands: C[.., m, n] = op(A)[.., m, k] · op(B)[.., k, n].
 * `b` may be 2-D and is then shared by every batch of `a` (a linear layer).
 *
 * The kernel is register-blocked: each invocation computes a 4x4 block of C held in four vec4
 * accumulators, reading A and B through general (row, column, batch) strides so that transposes
 * and chunk slices are just different strides and offsets. Operands larger than one binding are
 * cut into sub-matmuls along M, N and K at their chunk (row) boundaries; K pieces accumulate.
 *
 * Half precision (`precision: "f16"`, backends with shaderF16): A and B are first cast to f16
 * copies (round to nearest even, src/ops/cast.ts) and the f16 kernels read them, widening each
 * element to f32 and accumulating in f32 (C stays f32). The product of two halves is exact in
 * f32, so the result differs from the f32 kernels' only by the operands' rounding, not by an f16
 * accumulator whose 11-bit significand would lose the small terms of a long K sum. This is the
 * arithmetic of PyTorch's bf16 autocast matmuls (bf16 operands, fp32 accumulation), with f16's
 * 3 more significand bits and narrower range (|x| <= 65504, normals from 6.1e-5).
 */
import { defineKernel, type Binding, type CpuViews, type Kernel, type KernelParams } from "../backend.ts"
import { f16BitsToF32 } from "../f16.ts"
import type { DerivativeRule, Runtime, Tensor } from "../tensor.ts"
import { halfCopy } from "./cast.ts"
import { binding, requireF32, requireShape, shapeStr } from "./kernel.ts"
import { fill } from "./util.ts"

/** Operand precision of a matmul: f32, or f16 copies of A and B with f32 accumulation. */
export type MatmulPrecision = "f32" | "f16"

/** WGSL reading element `index` of binding `name` as f32: as is, or widened from f16. */
type Load = (name: string, index: string) => string
const loadF32: Load = (name, index) => `${name}[${index}]`
const loadF16: Load = (name, index) => `f32(${name}[${index}])`

const TILE = 32 // 8x8 invocations x 4x4 outputs each

/** WGSL: adds (or writes) one row of a 4x4 output block to C, skipping columns past N. */
const STORE_ROW = `fn storeRow(r: u32, col0: u32, v: vec4<f32>, base: u32) {
  for (var j = 0u; j < 4u; j++) {
    let c = col0 + j;
    if (c < P.N) {
      let idx = base + r * P.ldc + c;
      var prev = 0.0;
      if (P.acc != 0u) { prev = C[idx]; }
      C[idx] = prev + v[j];
    }
  }
}
`
/** WGSL: the four rows of a block, skipping rows past M; `accOf(r)` names row r's accumulator. */
const storeBlock = (accOf: (r: number) => string): string =>
  [0, 1, 2, 3].map((r) => `  if (row0 + ${r}u < P.M) { storeRow(row0 + ${r}u, col0, ${accOf(r)}, cbase); }`).join("\n")

/**
 * The start of the register-blocked kernels (scalar and vec4): invocation (x, y, bt) owns the 4x4
 * block of C at (row0, col0) of batch bt; mx/nx are the last row/column edge blocks clamp to.
 */
const blockPreamble = `${STORE_ROW}@compute @workgroup_size(8, 8, 1) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  let bt = gid.z;
  if (row0 >= P.M || col0 >= P.N) { return; }
  let mx = P.M - 1u;
  let nx = P.N - 1u;`

const matmulParams = [
  ["M", "u32"], ["N", "u32"], ["K", "u32"],
  ["offA", "u32"], ["rsA", "u32"], ["csA", "u32"], ["bsA", "u32"],
  ["offB", "u32"], ["rsB", "u32"], ["csB", "u32"], ["bsB", "u32"],
  ["offC", "u32"], ["ldc", "u32"], ["bsC", "u32"], ["acc", "u32"],
  // read by the CPU reference only; the WebGPU dispatch carries batches as workgroups.z
  ["batches", "u32"]
] as const

type MatmulParams = KernelParams<(typeof matmulParams)[number][0]>

/** The CPU reference of every matmul kernel, on operands already widened to f32. */
const matmulReference = (A: Float32Array, B: Float32Array, C: Float32Array, p: MatmulParams): void => {
  const { M, N, K, offA, rsA, csA, offB, rsB, csB, offC, ldc, acc } = p
  const batches = p.batches
  for (let bt = 0; bt < batches; bt++) {
    const a0 = offA + bt * p.bsA
    const b0 = offB + bt * p.bsB
    const c0 = offC + bt * p.bsC
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0
        for (let q = 0; q < K; q++) s += A[a0 + i * rsA + q * csA]! * B[b0 + q * rsB + j * csB]!
        const idx = c0 + i * ldc + j
        C[idx] = (acc !== 0 ? C[idx]! : 0) + s
      }
    }
  }
}

/** The f16 kernels' reference: the f32 one on the halves' exact f32 values. */
const matmulF16Reference = (views: CpuViews, p: MatmulParams): void =>
  matmulReference(Float32Array.from(views.f16bits("A"), f16BitsToF32), Float32Array.from(views.f16bits("B"), f16BitsToF32), views.f32("C"), p)

/** The register-blocked kernel for any strides, reading its operands through `load`. */
const blockedWgsl = (load: Load) => `${blockPreamble}
  // Edge blocks clamp their reads to the last row/column and skip those stores.
  let ra = vec4<u32>(min(row0, mx), min(row0 + 1u, mx), min(row0 + 2u, mx), min(row0 + 3u, mx)) * P.rsA + vec4<u32>(P.offA + bt * P.bsA);
  let cb = vec4<u32>(min(col0, nx), min(col0 + 1u, nx), min(col0 + 2u, nx), min(col0 + 3u, nx)) * P.csB + vec4<u32>(P.offB + bt * P.bsB);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var p = 0u; p < P.K; p++) {
    let pa = vec4<u32>(p * P.csA);
    let pb = vec4<u32>(p * P.rsB);
    let ia = ra + pa;
    let ib = cb + pb;
    let av = vec4<f32>(${load("A", "ia.x")}, ${load("A", "ia.y")}, ${load("A", "ia.z")}, ${load("A", "ia.w")});
    let bv = vec4<f32>(${load("B", "ib.x")}, ${load("B", "ib.y")}, ${load("B", "ib.z")}, ${load("B", "ib.w")});
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
  }
  let cbase = P.offC + bt * P.bsC;
${storeBlock((r) => `acc${r}`)}
}`

export const matmulKernel = defineKernel({
  name: "matmul",
  bindings: [binding("A"), binding("B"), binding("C", "read_write")],
  params: matmulParams,
  wgsl: blockedWgsl(loadF32),
  cpu: (views, p) => matmulReference(views.f32("A"), views.f32("B"), views.f32("C"), p)
})

/** The register-blocked kernel on f16 operands (f32 accumulation). */
export const matmulF16Kernel = defineKernel({
  name: "matmul_f16",
  bindings: [binding("A", "read", "f16"), binding("B", "read", "f16"), binding("C", "read_write")],
  params: matmulParams,
  enable: ["f16"],
  wgsl: blockedWgsl(loadF16),
  cpu: matmulF16Reference
})

/** The parameter names every matmul kernel (scalar, vec4, tiled) takes. */
export type MatmulParam = (typeof matmulKernel.params)[number][0]

type AContig = "k" | "m" // A stored [M,K] (k contiguous) or transposed [K,M] (m contiguous)
type BContig = "n" | "k" // B stored [K,N] (n contiguous) or transposed [N,K] (k contiguous)

/**
 * The vec4 variant: A and B are read as vec4 along their contiguous dimension, four k-steps at a
 * time, and the 4x4 block update is one mat4x4 product (acc += Bblock * Ablock, columns of acc
 * being rows of C). Needs K % 4 == 0 and 4-aligned offsets/strides (see `vec4Eligible`).
 */
const vec4Kernel = (ac: AContig, bc: BContig): Kernel<MatmulParam> => {
  const loadA =
    ac === "k"
      ? `let am = mat4x4<f32>(A[ra.x + k4], A[ra.y + k4], A[ra.z + k4], A[ra.w + k4]);`
      : `let ka = a4 + k4 * 4u * cs4;
    let am = transpose(mat4x4<f32>(A[ka], A[ka + cs4], A[ka + 2u * cs4], A[ka + 3u * cs4]));`
  const loadB =
    bc === "n"
      ? `let kb = b4 + k4 * 4u * rs4;
    let bm = mat4x4<f32>(B[kb], B[kb + rs4], B[kb + 2u * rs4], B[kb + 3u * rs4]);`
      : `let bm = transpose(mat4x4<f32>(B[cb.x + k4], B[cb.y + k4], B[cb.z + k4], B[cb.w + k4]));`
  return {
    name: `matmul_vec4_a${ac}_b${bc}`,
    bindings: [binding("A", "read", "vec4<f32>"), binding("B", "read", "vec4<f32>"), binding("C", "read_write")],
    params: matmulKernel.params,
    wgsl: `${blockPreamble}
  let aBase = P.offA + bt * P.bsA;
  let bBase = P.offB + bt * P.bsB;
  let ra = (vec4<u32>(min(row0, mx), min(row0 + 1u, mx), min(row0 + 2u, mx), min(row0 + 3u, mx)) * P.rsA + vec4<u32>(aBase)) / vec4<u32>(4u);
  let cb = (vec4<u32>(min(col0, nx), min(col0 + 1u, nx), min(col0 + 2u, nx), min(col0 + 3u, nx)) * P.csB + vec4<u32>(bBase)) / vec4<u32>(4u);
  let a4 = (aBase + row0) / 4u;
  let cs4 = P.csA / 4u;
  let b4 = (bBase + col0) / 4u;
  let rs4 = P.rsB / 4u;
  var acc = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k4 = 0u; k4 < P.K / 4u; k4++) {
    ${loadA}
    ${loadB}
    acc = acc + bm * am;
  }
  let cbase = P.offC + bt * P.bsC;
${storeBlock((r) => `acc[${r}]`)}
}`,
    cpu: matmulKernel.cpu
  }
}

const vec4Kernels = {
  kn: vec4Kernel("k", "n"),
  kk: vec4Kernel("k", "k"),
  mn: vec4Kernel("m", "n"),
  mk: vec4Kernel("m", "k")
} as const

const aligned = (...xs: number[]) => xs.every((x) => x % 4 === 0)

/** Whether the vec4 kernel can read A and B (K % 4 is split off by the caller). */
const vec4Eligible = (p: MatmulParams, transA: boolean, transB: boolean): boolean => {
  const aOk = transA
    ? p.rsA === 1 && aligned(p.M, p.csA, p.offA, p.bsA)
    : p.csA === 1 && aligned(p.rsA, p.offA, p.bsA)
  const bOk = transB
    ? p.rsB === 1 && aligned(p.csB, p.offB, p.bsB)
    : p.csB === 1 && aligned(p.N, p.rsB, p.offB, p.bsB)
  return aOk && bOk
}

const BM = 64
const BK = 16

/**
 * Shared-memory tiled variant for real GPUs: a 16x16 workgroup stages 64x16 tiles of A and B in
 * workgroup memory (loads coalesced along whichever dimension is contiguous) and each invocation
 * accumulates a 4x4 block from them. Any shape, stride or offset; out-of-range reads are zeros.
 * (On lavapipe staging through workgroup memory is slower than the register-blocked kernels.)
 */
// tiles stored as vec4 along M (A) and N (B) so the inner loop reads one vec4 of each
const tiledWgsl = (load: Load) => `var<workgroup> As: array<vec4<f32>, ${(BM * BK) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(BM * BK) / 4}>;
${STORE_ROW}@compute @workgroup_size(16, 16, 1) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tileRow = wid.y * ${BM}u;
  let tileCol = wid.x * ${BM}u;
  let bt = wid.z;
  let l = lid.y * 16u + lid.x;
  let aBase = P.offA + bt * P.bsA;
  let bBase = P.offB + bt * P.bsB;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < P.K; k0 += ${BK}u) {
    for (var rep = 0u; rep < ${(BM * BK) / 256}u; rep++) {
      let e = l + rep * 256u;
      // A tile element (row i, k kk); walk the contiguous dimension fastest
      var i = e / ${BK}u;
      var kk = e % ${BK}u;
      if (P.csA != 1u) { i = e % ${BM}u; kk = e / ${BM}u; }
      var av = 0.0;
      if (tileRow + i < P.M && k0 + kk < P.K) { av = ${load("A", "aBase + (tileRow + i) * P.rsA + (k0 + kk) * P.csA")}; }
      As[kk * ${BM / 4}u + i / 4u][i % 4u] = av;
      // B tile element (k kk, column j)
      var j = e % ${BM}u;
      var kb = e / ${BM}u;
      if (P.csB != 1u) { j = e / ${BK}u; kb = e % ${BK}u; }
      var bv = 0.0;
      if (tileCol + j < P.N && k0 + kb < P.K) { bv = ${load("B", "bBase + (k0 + kb) * P.rsB + (tileCol + j) * P.csB")}; }
      Bs[kb * ${BM / 4}u + j / 4u][j % 4u] = bv;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      let a = As[kk * ${BM / 4}u + lid.y];
      let b = Bs[kk * ${BM / 4}u + lid.x];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
    }
    workgroupBarrier();
  }
  let row0 = tileRow + lid.y * 4u;
  let col0 = tileCol + lid.x * 4u;
  if (col0 >= P.N) { return; }
  let cbase = P.offC + bt * P.bsC;
${storeBlock((r) => `acc${r}`)}
}`

export const matmulTiledKernel = defineKernel({
  name: "matmul_tiled",
  bindings: [binding("A"), binding("B"), binding("C", "read_write")],
  params: matmulParams,
  wgsl: tiledWgsl(loadF32),
  cpu: matmulKernel.cpu
})

/** The tiled kernel on f16 operands (the tiles hold them widened to f32). */
export const matmulTiledF16Kernel = defineKernel({
  name: "matmul_tiled_f16",
  bindings: [binding("A", "read", "f16"), binding("B", "read", "f16"), binding("C", "read_write")],
  params: matmulParams,
  enable: ["f16"],
  wgsl: tiledWgsl(loadF16),
  cpu: matmulF16Reference
})

/** Every f32 matmul kernel: one meaning and one parameter list (a fast backend can run them all alike). */
export const matmulKernels: ReadonlyArray<Kernel<MatmulParam>> = [matmulKernel, ...Object.values(vec4Kernels), matmulTiledKernel]

/**
 * One matmul dispatch: vec4 kernel for the largest multiple of 4 of K, scalar kernel for the rest;
 * with f16 operands the scalar (blocked) or tiled f16 kernel for all of it.
 */
const dispatchMatmul = (
  rt: Runtime,
  bindings: Record<string, Binding>,
  p: MatmulParams,
  transA: boolean,
  transB: boolean,
  batches: number,
  precision: MatmulPrecision
): void => {
  if (rt.backend.kernelFamily === "tiled") {
    rt.run(precision === "f16" ? matmulTiledF16Kernel : matmulTiledKernel, bindings, p, [Math.ceil(p.N / BM), Math.ceil(p.M / BM), batches])
    return
  }
  const groups: readonly [number, number, number] = [Math.ceil(p.N / TILE), Math.ceil(p.M / TILE), batches]
  if (precision === "f16") {
    rt.run(matmulF16Kernel, bindings, p, groups)
    return
  }
  const K4 = p.K - (p.K % 4)
  if (K4 > 0 && vec4Eligible(p, transA, transB)) {
    const k = vec4Kernels[`${transA ? "m" : "k"}${transB ? "k" : "n"}`]
    rt.run(k, bindings, { ...p, K: K4 }, groups)
    if (K4 === p.K) return
    rt.run(matmulKernel, bindings, { ...p, K: p.K - K4, offA: p.offA + K4 * p.csA, offB: p.offB + K4 * p.rsB, acc: 1 }, groups)
    return
  }
  rt.run(matmulKernel, bindings, p, groups)
}

/** What a matmul reads an operand from: a tensor, or its f16 copy (same chunks, same element offsets). */
type Operand = Pick<Tensor, "chunkElems" | "chunks" | "binding">

/** A 2-D row-major matrix inside a (possibly chunked) operand, starting at global row `rowBase`. */
interface Mat {
  readonly t: Operand
  readonly ld: number
  readonly rowBase: number
}

type Range = readonly [number, number]

/** Cuts [0, size) wherever one of the matrices whose stored rows run along this dim changes chunk. */
const ranges = (size: number, mats: readonly Mat[]): Range[] => {
  const cuts = new Set<number>([0, size])
  for (const m of mats) {
    if (m.t.chunks === 1) continue
    const rpc = m.t.chunkElems / m.ld
    for (let r = Math.ceil(m.rowBase / rpc) * rpc - m.rowBase; r < size; r += rpc) if (r > 0) cuts.add(r)
  }
  const sorted = [...cuts].sort((x, y) => x - y)
  const out: Range[] = []
  for (let i = 0; i + 1 < sorted.length; i++) out.push([sorted[i]!, sorted[i + 1]!])
  return out
}

/** Chunk and in-chunk element offset of (row, col) of a stored matrix. */
const locate = (m: Mat, row: number, col: number): { chunk: number; off: number } => {
  const rpc = m.t.chunkElems / m.ld
  const g = m.rowBase + row
  const chunk = Math.floor(g / rpc)
  return { chunk, off: (g - chunk * rpc) * m.ld + col }
}

/**
 * C (+)= op(A)·op(B) for one batch of 2-D matrices that may each span several chunks.
 * A is stored [M,K] (or [K,M] when transA), B [K,N] (or [N,K]), C [M,N].
 */
const matmul2d = (
  rt: Runtime,
  A: Mat, B: Mat, C: Mat,
  M: number, N: number, K: number,
  transA: boolean, transB: boolean, accumulate: boolean, precision: MatmulPrecision
): void => {
  const mR = ranges(M, [...(transA ? [] : [A]), C])
  const nR = ranges(N, transB ? [B] : [])
  const kR = ranges(K, [...(transA ? [A] : []), ...(transB ? [] : [B])])
  for (const [m0, m1] of mR) {
    for (const [n0, n1] of nR) {
      kR.forEach(([k0, k1], ki) => {
        const a = transA ? locate(A, k0, m0) : locate(A, m0, k0)
        const b = transB ? locate(B, n0, k0) : locate(B, k0, n0)
        const c = locate(C, m0, n0)
        const Mi = m1 - m0
        const Ni = n1 - n0
        dispatchMatmul(
          rt,
          { A: A.t.binding(a.chunk), B: B.t.binding(b.chunk), C: C.t.binding(c.chunk) },
          {
            M: Mi, N: Ni, K: k1 - k0,
            offA: a.off, rsA: transA ? 1 : A.ld, csA: transA ? A.ld : 1, bsA: 0,
            offB: b.off, rsB: transB ? 1 : B.ld, csB: transB ? B.ld : 1, bsB: 0,
            offC: c.off, ldc: C.ld, bsC: 0,
            acc: accumulate || ki > 0 ? 1 : 0,
            batches: 1
          },
          transA,
          transB,
          1,
          precision
        )
      })
    }
  }
}

interface Plan {
  readonly batch: readonly number[]
  readonly batches: number
  readonly M: number
  readonly N: number
  readonly K: number
  /** b is 2-D and shared by all batches of a. */
  readonly shared: boolean
}

const plan = (a: Tensor, b: Tensor, transA: boolean, transB: boolean): Plan => {
  requireF32("matmul", a, b)
  const bad = `matmul: cannot multiply ${shapeStr(a.shape)}${transA ? "ᵀ" : ""} by ${shapeStr(b.shape)}${transB ? "ᵀ" : ""}`
  requireShape(a.shape.length >= 2 && b.shape.length >= 2, bad)
  const ar = a.shape.length
  const br = b.shape.length
  const M = transA ? a.shape[ar - 1]! : a.shape[ar - 2]!
  const Ka = transA ? a.shape[ar - 2]! : a.shape[ar - 1]!
  const Kb = transB ? b.shape[br - 1]! : b.shape[br - 2]!
  const N = transB ? b.shape[br - 2]! : b.shape[br - 1]!
  requireShape(Ka === Kb, bad)
  const batch = a.shape.slice(0, ar - 2)
  const shared = br === 2 && ar > 2
  if (!shared) {
    requireShape(br === ar && b.shape.slice(0, br - 2).every((d, i) => d === batch[i]), bad)
  } else {
    // A batched, transposed A with a shared B would need a batch-sum in backward; no model uses it.
    requireShape(!transA, `${bad}: a transposed batched operand with a 2-D right operand is not supported`)
  }
  return { batch, batches: batch.reduce((x, y) => x * y, 1), M, N, K: Ka, shared }
}

/** Writes (or adds, with `accumulate`) op(a)·op(b) into `out` without recording a graph node. */
export const matmulInto = (
  rt: Runtime, a: Tensor, b: Tensor, out: Tensor, transA: boolean, transB: boolean, accumulate: boolean, precision: MatmulPrecision = "f32"
): void => {
  const p = plan(a, b, transA, transB)
  const { M, N, K } = p
  if (M === 0 || N === 0) return
  if (K === 0) {
    if (!accumulate) fill(rt, out, 0)
    return
  }
  if (precision === "f16") {
    const a16 = halfCopy(rt, a)
    const b16 = halfCopy(rt, b)
    try {
      matmulOperands(rt, p, a16, b16, a.rowLength, b.rowLength, out, transA, transB, accumulate, precision)
    } finally {
      // freed once the dispatches reading them are recorded; a later dispatch reusing the memory runs after those
      a16.dispose()
      b16.dispose()
    }
    return
  }
  matmulOperands(rt, p, a, b, a.rowLength, b.rowLength, out, transA, transB, accumulate, precision)
}

/** The dispatches of `matmulInto` on operands (tensors or their f16 copies) with row lengths ldA, ldB. */
const matmulOperands = (
  rt: Runtime, p: Plan, a: Operand, b: Operand, ldA: number, ldB: number, out: Tensor,
  transA: boolean, transB: boolean, accumulate: boolean, precision: MatmulPrecision
): void => {
  const { M, N, K } = p
  if (p.shared) {
    // [..., m, k] x [k, n]: one 2-D product over all rows of a.
    const rows = p.batches * M
    matmul2d(rt, { t: a, ld: ldA, rowBase: 0 }, { t: b, ld: ldB, rowBase: 0 }, { t: out, ld: N, rowBase: 0 }, rows, N, K, false, transB, accumulate, precision)
    return
  }
  if (a.chunks === 1 && b.chunks === 1 && out.chunks === 1 && p.batches <= 65535) {
    dispatchMatmul(
      rt,
      { A: a.binding(), B: b.binding(), C: out.binding() },
      {
        M, N, K,
        offA: 0, rsA: transA ? 1 : ldA, csA: transA ? ldA : 1, bsA: M * K,
        offB: 0, rsB: transB ? 1 : ldB, csB: transB ? ldB : 1, bsB: K * N,
        offC: 0, ldc: N, bsC: M * N,
        acc: accumulate ? 1 : 0, batches: p.batches
      },
      transA,
      transB,
      p.batches,
      precision
    )
    return
  }
  const aRows = transA ? K : M
  const bRows = transB ? N : K
  for (let bt = 0; bt < p.batches; bt++) {
    matmul2d(
      rt,
      { t: a, ld: ldA, rowBase: bt * aRows },
      { t: b, ld: ldB, rowBase: bt * bRows },
      { t: out, ld: N, rowBase: bt * M },
      M, N, K, transA, transB, accumulate, precision
    )
  }
}

const matmulShape = (a: Tensor, b: Tensor, transA: boolean, transB: boolean): number[] => {
  const p = plan(a, b, transA, transB)
  return [...p.batch, p.M, p.N]
}

const matmulNew = (rt: Runtime, a: Tensor, b: Tensor, transA: boolean, transB: boolean, precision: MatmulPrecision): Tensor => {
  const out = rt.empty(matmulShape(a, b, transA, transB))
  matmulInto(rt, a, b, out, transA, transB, false, precision)
  return out
}

/** op(a)·op(b); with precision "f16" its backward's matmuls take f16 operands too. */
export const matmul = (rt: Runtime, a: Tensor, b: Tensor, transA = false, transB = false, precision: MatmulPrecision = "f32"): Tensor => {
  const out = matmulNew(rt, a, b, transA, transB, precision)
  return rt.record(out, "matmul", [a, b], [], precision === "f16" ? { transA, transB, f16: true } : { transA, transB })
}

/** Flattens [..., r, c] to [prod(...)*r, c] as a view (caller disposes). */
const flatten2d = (rt: Runtime, t: Tensor): Tensor => rt.view(t, [t.size / t.rowLength, t.rowLength])

export const matmulRule: DerivativeRule = (rt, g, node) => {
  const [A, B] = node.inputs as [Tensor, Tensor]
  const transA = node.attrs["transA"] === true
  const transB = node.attrs["transB"] === true
  const precision: MatmulPrecision = node.attrs["f16"] === true ? "f16" : "f32"
  const shared = B.shape.length === 2 && A.shape.length > 2
  let dA: Tensor | null = null
  let dB: Tensor | null = null
  if (A.requiresGrad) {
    dA = transA ? matmulNew(rt, B, g, transB, true, precision) : matmulNew(rt, g, B, false, !transB, precision)
  }
  if (B.requiresGrad) {
    if (shared) {
      const A2 = flatten2d(rt, A)
      const g2 = flatten2d(rt, g)
      dB = transB ? matmulNew(rt, g2, A2, true, false, precision) : matmulNew(rt, A2, g2, true, false, precision)
      A2.dispose()
      g2.dispose()
    } else {
      dB = transB ? matmulNew(rt, g, A, true, transA, precision) : matmulNew(rt, A, g, !transA, false, precision)
    }
  }
  return [dA, dB]
}
