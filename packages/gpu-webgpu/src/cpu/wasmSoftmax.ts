/**
 * The causal softmax of attention's [T,T] score blocks (and the cross-entropy's row log-sum-exp
 * and gradient, further down) in WebAssembly SIMD (emitted as bytes like
 * src/cpu/wasmExp.ts, whose exp it uses): the passes src/cpu/fastAttention.ts otherwise makes in
 * JavaScript (~1 ns an element each) over row t's first t+1 scores. Rows are processed in whole
 * 4-float vectors up to ceil((t+1)/4)*4, so T must be a multiple of 4 (fastAttention falls back to
 * its JavaScript loops otherwise); every score past the diagonal comes out +0.
 *
 * Memory: block S at byte 0 ([T,T], row stride T), block P at 4T² (scoreGrad only), per-row
 * values at 8T² (`aux`, 2T floats). Functions (p, T, scale, aux, q), all byte addresses:
 *  - forward(S): x = scale·S; m_t = max_s x; e = exp(x - m_t); l_t = Σ e; S = e / l_t;
 *    aux[t] = m_t, aux[T + t] = l_t (lse = m + log l is left to the caller: wasm has no log)
 *  - backward(S): S = exp(scale·S - aux[t]) (aux holds the rows' lse)
 *  - scoreGrad(dS at p, P at q): dS = scale·P·(dS - aux[t]) (aux holds the rows' D)
 */
import { uleb, str, section, vec, I32, F32, V128, get, set, tee, i32c, add, mul, shl, shrU, end, f32load, f32store, f32c, f32div, f32max, v128load, v128store, f32x4, splat, lane, fadd, fsub, fmul, fmax, forLoop, hsum, WasmInstance } from "./wasmEncoding.ts"
import { expOf } from "./wasmExp.ts"


// params
const [P, T, SCALE, AUX, Q] = [0, 1, 2, 3, 4]
// i32 locals
const [t, n4, rowp, v, rowEnd, Tb, s, rowq] = [5, 6, 7, 8, 9, 10, 11, 12]
// f32 locals
const [m, l, c] = [13, 14, 15]
// v128 locals
const [X, FX, R, TT, A, VM, VS, SC, CM] = [16, 17, 18, 19, 20, 21, 22, 23, 24]


/** address rowp + v (the current vector of the row) */
const at = [...get(rowp), ...get(v), ...add]

/** rows t of the block, with rowp, n4 (floats up to the row's last vector end) and rowEnd (bytes) set */
const rows = (body: number[]): number[] => [
  ...get(T), ...i32c(4), ...mul, ...set(Tb),
  ...get(SCALE), ...splat, ...set(SC),
  ...forLoop(t, i32c(0), T, 1, [
    ...get(P), ...get(t), ...get(Tb), ...mul, ...add, ...set(rowp),
    ...get(t), ...i32c(4), ...add, ...i32c(2), ...shrU, ...i32c(2), ...shl, ...tee(n4), ...i32c(4), ...mul, ...set(rowEnd),
    ...body,
    // +0 past the diagonal: the scalars of the last vector, then whole vectors
    ...forLoop(s, [...get(t), ...i32c(1), ...add], n4, 1, [...get(rowp), ...get(s), ...i32c(4), ...mul, ...add, ...f32c(0), ...f32store]),
    ...forLoop(v, get(rowEnd), Tb, 16, [...at, ...f32x4(0), ...v128store(0)])
  ])
]

/** the row's vectors up to rowEnd */
const vectors = (body: number[]): number[] => forLoop(v, i32c(0), rowEnd, 16, body)

/** horizontal max of a v128 local */
const hmax = (x: number) => [...get(x), ...lane(0), ...get(x), ...lane(1), ...f32max, ...get(x), ...lane(2), ...get(x), ...lane(3), ...f32max, ...f32max]

const auxAt = (offsetFloats: number[]) => [...get(AUX), ...offsetFloats, ...i32c(4), ...mul, ...add]

const forward = rows([
  // scores past the diagonal inside the last vector: -3e38, so they add nothing to max or sum
  ...forLoop(s, [...get(t), ...i32c(1), ...add], n4, 1, [...get(rowp), ...get(s), ...i32c(4), ...mul, ...add, ...f32c(-3e38), ...f32store]),
  ...f32x4(-3e38), ...set(VM),
  ...vectors([...at, ...at, ...v128load(0), ...get(SC), ...fmul, ...tee(X), ...v128store(0), ...get(VM), ...get(X), ...fmax, ...set(VM)]),
  ...hmax(VM), ...set(m),
  ...get(m), ...splat, ...set(CM),
  ...f32x4(0), ...set(VS),
  ...vectors([...at, ...v128load(0), ...get(CM), ...fsub, ...set(A), ...at, ...expOf(A, FX, R, TT), ...tee(X), ...v128store(0), ...get(VS), ...get(X), ...fadd, ...set(VS)]),
  ...hsum(VS), ...set(l),
  ...auxAt(get(t)), ...get(m), ...f32store,
  ...auxAt([...get(T), ...get(t), ...add]), ...get(l), ...f32store,
  ...f32c(1), ...get(l), ...f32div, ...splat, ...set(CM),
  ...vectors([...at, ...at, ...v128load(0), ...get(CM), ...fmul, ...v128store(0)])
])

const backward = rows([
  ...auxAt(get(t)), ...f32load(), ...splat, ...set(CM),
  ...vectors([...at, ...v128load(0), ...get(SC), ...fmul, ...get(CM), ...fsub, ...set(A), ...at, ...expOf(A, FX, R, TT), ...v128store(0)])
])

const scoreGrad = rows([
  ...auxAt(get(t)), ...f32load(), ...splat, ...set(CM),
  ...get(Q), ...get(t), ...get(Tb), ...mul, ...add, ...set(rowq),
  // dS = (scale·P)·(dS - D)
  ...vectors([
    ...at,
    ...get(SC), ...get(rowq), ...get(v), ...add, ...v128load(0), ...fmul,
    ...at, ...v128load(0), ...get(CM), ...fsub, ...fmul,
    ...v128store(0)
  ])
])

const func = (code: number[]): number[] => {
  const body = [...vec([[8, I32], [3, F32], [9, V128]]), ...code, ...end]
  return [...uleb(body.length), ...body]
}

/*
 * The cross-entropy's rows (src/cpu/fastExpKernels.ts), V a multiple of 4: functions
 * (p, rows, V, aux, g) over a [rows, V] block of logits at p:
 *  - ceRows: aux[r] = m_r = max_j x, aux[rows + r] = l_r = Σ_j exp(x - m_r) (x unchanged)
 *  - ceGrad: x = exp(x - aux[r]) · g (aux holds the rows' lse)
 */
const [cP, cRows, cV, cAux, cG] = [0, 1, 2, 3, 4]
const [cr, cRowp, cv, cRowEnd] = [5, 6, 7, 8]
const [cm, cl] = [9, 10]
const [cX, cFX, cR, cTT, cA, cVM, cVS, cCM, cGV] = [11, 12, 13, 14, 15, 16, 17, 18, 19]
const cAt = [...get(cRowp), ...get(cv), ...add]
const ceRowLoop = (body: number[]): number[] => [
  ...get(cV), ...i32c(4), ...mul, ...set(cRowEnd),
  ...forLoop(cr, i32c(0), cRows, 1, [
    ...get(cP), ...get(cr), ...get(cRowEnd), ...mul, ...add, ...set(cRowp),
    ...body
  ])
]
const ceVectors = (body: number[]): number[] => forLoop(cv, i32c(0), cRowEnd, 16, body)
const ceAux = (offsetFloats: number[]) => [...get(cAux), ...offsetFloats, ...i32c(4), ...mul, ...add]

const ceRows = ceRowLoop([
  ...f32x4(-Infinity), ...set(cVM),
  ...ceVectors([...get(cVM), ...cAt, ...v128load(0), ...fmax, ...set(cVM)]),
  ...hmax(cVM), ...set(cm),
  ...get(cm), ...splat, ...set(cCM),
  ...f32x4(0), ...set(cVS),
  ...ceVectors([...cAt, ...v128load(0), ...get(cCM), ...fsub, ...set(cA), ...get(cVS), ...expOf(cA, cFX, cR, cTT), ...fadd, ...set(cVS)]),
  ...hsum(cVS), ...set(cl),
  ...ceAux(get(cr)), ...get(cm), ...f32store,
  ...ceAux([...get(cRows), ...get(cr), ...add]), ...get(cl), ...f32store
])

const ceGrad = [
  ...get(cG), ...splat, ...set(cGV),
  ...ceRowLoop([
    ...ceAux(get(cr)), ...f32load(), ...splat, ...set(cCM),
    ...ceVectors([...cAt, ...cAt, ...v128load(0), ...get(cCM), ...fsub, ...set(cA), ...expOf(cA, cFX, cR, cTT), ...get(cGV), ...fmul, ...v128store(0)])
  ])
]

const ceFunc = (code: number[]): number[] => {
  const body = [...vec([[4, I32], [2, F32], [9, V128]]), ...code, ...end]
  return [...uleb(body.length), ...body]
}

/**
 * The module's bytes: imports memory env.mem, exports forward, backward and scoreGrad (p, T,
 * scale, aux, q), ceRows and ceGrad (p, rows, V, aux, g).
 */
export const softmaxModuleBytes = (): Uint8Array => new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32], [F32], [I32], [I32]]), 0x00], [0x60, ...vec([[I32], [I32], [I32], [I32], [F32]]), 0x00]])),
  ...section(2, vec([[...str("env"), ...str("mem"), 0x02, 0x00, ...uleb(1)]])),
  ...section(3, vec([[0x00], [0x00], [0x00], [0x01], [0x01]])),
  ...section(7, vec([
    [...str("forward"), 0x00, 0x00], [...str("backward"), 0x00, 0x01], [...str("scoreGrad"), 0x00, 0x02],
    [...str("ceRows"), 0x00, 0x03], [...str("ceGrad"), 0x00, 0x04]
  ])),
  ...section(10, vec([func(forward), func(backward), func(scoreGrad), ceFunc(ceRows), ceFunc(ceGrad)]))
])

type BlockFn = (p: number, T: number, scale: number, aux: number, q: number) => void
type RowsFn = (p: number, rows: number, V: number, aux: number, g: number) => void

/**
 * The three block functions with their memory: copy a block into `block()` (and P into `second()`,
 * per-row values into `aux()`), call, copy back. Not reentrant; one per kernel user.
 */
export class WasmSoftmax {
  private readonly wasm = new WasmInstance<{ forward: BlockFn; backward: BlockFn; scoreGrad: BlockFn; ceRows: RowsFn; ceGrad: RowsFn }>(softmaxModuleBytes())
  private T = 0

  /** Whether blocks of T rows can run here (T a multiple of 4). */
  static fits(T: number): boolean {
    return T % 4 === 0 && T > 0
  }

  /** Sizes the memory for [T,T] blocks; returns the whole f32 view (block at 0, P at T², aux at 2T²). */
  use(T: number): Float32Array {
    this.T = T
    return this.wasm.floats(2 * T * T + 2 * T)
  }

  /** Sizes the memory for `rows` rows of V logits: the whole f32 view (block at 0, aux at rows·V). */
  useRows(rows: number, V: number): Float32Array {
    return this.wasm.floats(rows * V + 2 * rows)
  }

  /** aux[r] = max of row r, aux[rows + r] = Σ exp(x - max) (V a multiple of 4) */
  ceRows(rows: number, V: number): void {
    this.wasm.fns.ceRows(0, rows, V, 4 * rows * V, 0)
  }

  /** x = exp(x - aux[r]) · g over the rows (aux holds their lse) */
  ceGrad(rows: number, V: number, g: number): void {
    this.wasm.fns.ceGrad(0, rows, V, 4 * rows * V, g)
  }

  forward(scale: number): void {
    const T = this.T
    this.wasm.fns.forward(0, T, scale, 8 * T * T, 0)
  }

  backward(scale: number): void {
    const T = this.T
    this.wasm.fns.backward(0, T, scale, 8 * T * T, 0)
  }

  scoreGrad(scale: number): void {
    const T = this.T
    this.wasm.fns.scoreGrad(0, T, scale, 8 * T * T, 4 * T * T)
  }
}
