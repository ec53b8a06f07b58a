/**
 * WGSL kernels of the SparseLoCo codec, each with a CPU reference of the same meaning (the
 * engine's CPU backend runs those, so the orchestration is testable without a GPU).
 *
 * Chunks are addressed with the 2-D parameters (X blocks per block row, block edge h x w, dense
 * row length cols); a 1-D tensor is the same with X = 1, h = 1, w = cols = n, so its chunk c
 * starts at c*n and local index j is element c*n + j, as in layout.ts.
 */
import type { Kernel, KernelBindingSpec } from "@covenant/gpu-webgpu"

const f32 = Math.fround
const ABS = 0x7fffffff
const bind = (name: string, type: "f32" | "i32", access: "read" | "read_write" = "read"): KernelBindingSpec => ({ name, type, access })

/** Dense offset of local index j of chunk c (the same formula the WGSL uses). */
export const denseOffset = (c: number, j: number, X: number, h: number, w: number, cols: number): number => {
  const yy = Math.floor(c / X)
  const xx = c - yy * X
  return yy * h * cols + xx * w + Math.floor(j / w) * cols + (j % w)
}

const chunkWgsl = `fn denseOffset(c: u32, j: u32) -> u32 {
  let yy = c / P.X;
  let xx = c - yy * P.X;
  return yy * P.h * P.cols + xx * P.w + (j / P.w) * P.cols + (j % P.w);
}`

const WG = 256
/** Entry of an element-wise kernel dispatched with grid1d(n, 256). */
const main1d = `@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${WG}u;`

/** Chunk elements per invocation: 256 invocations x 16 cover the largest chunk, 64 x 64. */
const SLOTS = 16

/**
 * Error feedback and per-chunk top-k by |x|, one workgroup of 256 per chunk (the EF update is
 * fused in because a workgroup owns its whole chunk: the tensor is read and written once).
 *
 * ef <- fround(fround(ef * beta) + delta): the product goes through a bit-level identity with a
 * uniform zero (unknown to the compiler) so it cannot be contracted into an fma, whose single
 * rounding would differ from the reference's two; WGSL does not forbid such contraction
 * (lavapipe happens not to do it).
 *
 * The key is the float32 bit pattern of |x| (sign cleared), which orders like |x| and puts NaN
 * above infinity, as the CPU path. Invocation `lid` keeps the keys of local indices
 * lid + 256*t in registers; a 4-pass radix select (8 bits per pass, histogram in workgroup
 * memory) finds the k-th largest key T and how many elements equal to T are still needed. The
 * selection is marked in two bitmasks (above T, equal to T) indexed by local index, so the
 * lowest-index ties are kept (the CPU path's tie rule) and prefix popcounts place the entries
 * in ascending index order (TensorUpdate's order) without sorting. Entry e of this tensor
 * goes to sel[at + e] (its local index) and sel[total + at + e] (the bits of its signed
 * value): one buffer for the entries of a whole batch of tensors, so one download fetches all.
 * Chunk c counts within the bound storage binding (a tensor over the binding limit is run
 * binding by binding, `at` placing each binding's chunks in the batch).
 */
export const topkKernel: Kernel = {
  name: "sparseloco.efTopk",
  bindings: [bind("delta", "f32"), bind("ef", "f32", "read_write"), bind("sel", "i32", "read_write")],
  params: [
    ["nChunks", "u32"], ["X", "u32"], ["h", "u32"], ["w", "u32"], ["cols", "u32"], ["totalk", "u32"], ["k", "u32"],
    ["beta", "f32"], ["zero", "u32"], ["at", "u32"], ["total", "u32"],
  ],
  wgsl: `${chunkWgsl}
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> scanBuf: array<u32, ${WG}>;
var<workgroup> aboveMask: array<atomic<u32>, 128>;
var<workgroup> tieMask: array<atomic<u32>, 128>;
var<workgroup> sPrefix: u32;
var<workgroup> sRemain: u32;

/** Exclusive prefix sum of v over the workgroup (Hillis-Steele). */
fn exclusiveScan(v: u32, lid: u32) -> u32 {
  scanBuf[lid] = v;
  workgroupBarrier();
  for (var d = 1u; d < ${WG}u; d = d * 2u) {
    var add = 0u;
    if (lid >= d) { add = scanBuf[lid - d]; }
    workgroupBarrier();
    scanBuf[lid] = scanBuf[lid] + add;
    workgroupBarrier();
  }
  let incl = scanBuf[lid];
  workgroupBarrier();
  return incl - v;
}

@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lidv: vec3<u32>) {
  let c = wid.x + wid.y * nwg.x;
  if (c >= P.nChunks) { return; }
  let lid = lidv.x;
  var keys: array<u32, ${SLOTS}>;
  for (var t = 0u; t < ${SLOTS}u; t++) {
    let j = t * ${WG}u + lid;
    if (j < P.totalk) {
      let off = denseOffset(c, j);
      let m = bitcast<f32>(bitcast<u32>(ef[off] * P.beta) ^ P.zero);
      let v = m + delta[off];
      ef[off] = v;
      keys[t] = bitcast<u32>(v) & 0x7fffffffu;
    }
  }
  if (lid == 0u) { sPrefix = 0u; sRemain = P.k; }
  if (lid < 128u) { atomicStore(&aboveMask[lid], 0u); atomicStore(&tieMask[lid], 0u); }
  // bits of T fixed by the passes so far
  var known = 0u;
  for (var ps = 0u; ps < 4u; ps++) {
    let shift = 24u - 8u * ps;
    atomicStore(&hist[lid], 0u);
    workgroupBarrier();
    let prefix = sPrefix;
    for (var t = 0u; t < ${SLOTS}u; t++) {
      let key = keys[t];
      if (t * ${WG}u + lid < P.totalk && ((key ^ prefix) & known) == 0u) { atomicAdd(&hist[(key >> shift) & 0xffu], 1u); }
    }
    workgroupBarrier();
    if (lid == 0u) {
      // the digit holding the r-th largest key among those matching the prefix
      var r = sRemain;
      var d = 255u;
      loop {
        let n = atomicLoad(&hist[d]);
        if (n >= r || d == 0u) { break; }
        r = r - n;
        d = d - 1u;
      }
      sRemain = r;
      sPrefix = prefix | (d << shift);
    }
    known = known | (0xffu << shift);
    workgroupBarrier();
  }
  let T = sPrefix;
  let need = sRemain;
  for (var t = 0u; t < ${SLOTS}u; t++) {
    let j = t * ${WG}u + lid;
    if (j < P.totalk) {
      let bit = 1u << (j & 31u);
      if (keys[t] > T) { atomicOr(&aboveMask[j >> 5u], bit); } else if (keys[t] == T) { atomicOr(&tieMask[j >> 5u], bit); }
    }
  }
  // the other invocations' EF writes are read back below
  storageBarrier();
  workgroupBarrier();
  // invocation w < 128 owns mask word w, local indices 32w .. 32w+31
  var ties = 0u;
  var above = 0u;
  if (lid < 128u) { ties = atomicLoad(&tieMask[lid]); above = atomicLoad(&aboveMask[lid]); }
  var keepTies = need - min(need, exclusiveScan(countOneBits(ties), lid));
  var word = above;
  var rest = ties;
  while (rest != 0u && keepTies > 0u) {
    let low = rest & (~rest + 1u);
    word = word | low;
    rest = rest ^ low;
    keepTies -= 1u;
  }
  var o = P.at + c * P.k + exclusiveScan(countOneBits(word), lid);
  while (word != 0u) {
    let j = lid * 32u + firstTrailingBit(word);
    sel[o] = i32(j);
    sel[P.total + o] = bitcast<i32>(ef[denseOffset(c, j)]);
    o += 1u;
    word = word & (word - 1u);
  }
}`,
  cpu: (v, p) => {
    const ef = v.f32("ef")
    const delta = v.f32("delta")
    const bits = new Int32Array(ef.buffer, ef.byteOffset, ef.length)
    const sel = v.i32("sel")
    const { nChunks, X, h, w, cols, totalk, k, beta, at, total } = p as Record<string, number>
    const keys = new Uint32Array(totalk!)
    for (let c = 0; c < nChunks!; c++) {
      for (let j = 0; j < totalk!; j++) {
        const off = denseOffset(c, j, X!, h!, w!, cols!)
        ef[off] = f32(ef[off]! * beta!) + delta[off]!
        keys[j] = bits[off]! & ABS
      }
      const T = Uint32Array.from(keys).sort()[totalk! - k!]!
      let above = 0
      for (let j = 0; j < totalk!; j++) if (keys[j]! > T) above++
      let take = k! - above
      let o = at! + c * k!
      for (let j = 0; j < totalk!; j++) {
        if (keys[j]! > T || (keys[j] === T && take-- > 0)) {
          sel[o] = j
          sel[total! + o++] = bits[denseOffset(c, j, X!, h!, w!, cols!)]!
        }
      }
    }
  },
}

/**
 * Scatter of dequantized entries dq[code] to their dense positions. With sub = 1 it removes what
 * was sent from the EF buffer (ef - (lookup + shift), one correctly rounded float32 subtraction
 * as the CPU path); with sub = 0 it writes the decoded value into a zeroed dense tensor. Indices
 * are unique per chunk, so no two invocations write the same element. The entries are
 * idx[at + i], codes[at + i] for i < n (a slice of a batch's buffers).
 */
export const scatterKernel: Kernel = {
  name: "sparseloco.scatter",
  bindings: [bind("idx", "i32"), bind("codes", "i32"), bind("dense", "f32", "read_write")],
  params: [
    ["n", "u32"], ["at", "u32"], ["k", "u32"], ["X", "u32"], ["h", "u32"], ["w", "u32"], ["cols", "u32"], ["sub", "u32"],
    ["d0", "f32"], ["d1", "f32"], ["d2", "f32"], ["d3", "f32"],
  ],
  wgsl: `${chunkWgsl}
${main1d}
  if (i >= P.n) { return; }
  let q = denseOffset(i / P.k, u32(idx[P.at + i]));
  let dq = array<f32, 4>(P.d0, P.d1, P.d2, P.d3);
  let v = dq[u32(codes[P.at + i]) & 3u];
  if (P.sub == 1u) { dense[q] = dense[q] - v; } else { dense[q] = v; }
}`,
  cpu: (v, p) => {
    const idx = v.i32("idx")
    const codes = v.i32("codes")
    const dense = v.f32("dense")
    const { n, at, k, X, h, w, cols, sub } = p as Record<string, number>
    const dq = [p["d0"]!, p["d1"]!, p["d2"]!, p["d3"]!]
    for (let i = 0; i < n!; i++) {
      const q = denseOffset(Math.floor(i / k!), idx[at! + i]!, X!, h!, w!, cols!)
      const val = dq[codes[at! + i]! & 3]!
      dense[q] = sub === 1 ? dense[q]! - val : val
    }
  },
}

/**
 * One peer's share of the aggregate: sum[pos] += scaled[code], cnt[pos] += 1 for entries
 * idx[at + i], codes[at + i], i < n. Peers are dispatched one after another in peer order, so
 * every coordinate's float32 sum runs in that order, as the CPU path; inside one peer the
 * positions are unique, so no two invocations touch the same coordinate.
 */
export const accumulateKernel: Kernel = {
  name: "sparseloco.accumulate",
  bindings: [bind("idx", "i32"), bind("codes", "i32"), bind("sum", "f32", "read_write"), bind("cnt", "i32", "read_write")],
  params: [
    ["n", "u32"], ["at", "u32"], ["k", "u32"], ["X", "u32"], ["h", "u32"], ["w", "u32"], ["cols", "u32"],
    ["d0", "f32"], ["d1", "f32"], ["d2", "f32"], ["d3", "f32"],
  ],
  wgsl: `${chunkWgsl}
${main1d}
  if (i >= P.n) { return; }
  let q = denseOffset(i / P.k, u32(idx[P.at + i]));
  let sv = array<f32, 4>(P.d0, P.d1, P.d2, P.d3);
  sum[q] = sum[q] + sv[u32(codes[P.at + i]) & 3u];
  cnt[q] = cnt[q] + 1;
}`,
  cpu: (v, p) => {
    const idx = v.i32("idx")
    const codes = v.i32("codes")
    const sum = v.f32("sum")
    const cnt = v.i32("cnt")
    const { n, at, k, X, h, w, cols } = p as Record<string, number>
    const sv = [p["d0"]!, p["d1"]!, p["d2"]!, p["d3"]!]
    for (let i = 0; i < n!; i++) {
      const q = denseOffset(Math.floor(i / k!), idx[at! + i]!, X!, h!, w!, cols!)
      sum[q] = sum[q]! + sv[codes[at! + i]! & 3]!
      cnt[q] = cnt[q]! + 1
    }
  },
}

/**
 * sum <- sum / cnt where cnt > 1 (the mean over the peers that selected a coordinate; 0 and 1
 * leave the sum as is, as the CPU path), and bad[0] = 1 if any result is not finite.
 */
export const meanKernel: Kernel = {
  name: "sparseloco.mean",
  bindings: [bind("cnt", "i32"), bind("sum", "f32", "read_write"), bind("bad", "i32", "read_write")],
  params: [["n", "u32"]],
  wgsl: `${main1d}
  if (i >= P.n) { return; }
  let m = cnt[i];
  var v = sum[i];
  if (m > 1) { v = v / f32(m); sum[i] = v; }
  // all-ones exponent: inf or NaN (a bit test, which no float fast-math rewrite can fold away)
  if ((bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u) { bad[0] = 1; }
}`,
  cpu: (v, p) => {
    const cnt = v.i32("cnt")
    const sum = v.f32("sum")
    const bad = v.i32("bad")
    for (let i = 0; i < p["n"]!; i++) {
      const m = cnt[i]!
      if (m > 1) sum[i] = f32(sum[i]! / m)
      if (sum[i]! - sum[i]! !== 0) bad[0] = 1
    }
  },
}
