/**
 * AdamW with decoupled weight decay, fused into one kernel per parameter chunk, with the same
 * arithmetic order as torch.optim.AdamW (non-amsgrad, non-foreach):
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 */
import type { Runtime, Tensor } from "../tensor.ts"
import { TensorError } from "../tensor.ts"
import { mapKernel } from "../ops/kernel.ts"
import { zerosLike } from "../ops/util.ts"

export const adamwKernel = mapKernel({
  name: "adamw",
  inputs: ["g"],
  outputs: ["p", "m", "v"],
  params: [["lr", "f32"], ["beta1", "f32"], ["beta2", "f32"], ["eps", "f32"], ["wd", "f32"], ["bc1", "f32"], ["sqrtBc2", "f32"]],
  body: `let gi = g[i];
  let pi = p[i] * (1.0 - P.lr * P.wd);
  let mi = P.beta1 * m[i] + (1.0 - P.beta1) * gi;
  let vi = P.beta2 * v[i] + (1.0 - P.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - (P.lr / P.bc1) * mi / (sqrt(vi) / P.sqrtBc2 + P.eps);`,
  cpu: (i, _bi, x, q) => {
    const f = Math.fround
    const gi = x["g"]![i]!
    const pi = f(x["p"]![i]! * f(1 - f(q["lr"]! * q["wd"]!)))
    const mi = f(f(q["beta1"]! * x["m"]![i]!) + f(f(1 - q["beta1"]!) * gi))
    const vi = f(f(q["beta2"]! * x["v"]![i]!) + f(f(f(1 - q["beta2"]!) * gi) * gi))
    x["m"]![i] = mi
    x["v"]![i] = vi
    x["p"]![i] = pi - (f(q["lr"]! / q["bc1"]!) * mi) / (f(Math.sqrt(vi)) / q["sqrtBc2"]! + q["eps"]!)
  }
})

export interface AdamWHyper {
  readonly lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  /** 1-based step count used for bias correction. */
  readonly step: number
}

/** First and second moments per parameter, created (zeroed) on the first step that sees it. */
export class AdamWState {
  readonly moments = new Map<Tensor, { readonly m: Tensor; readonly v: Tensor }>()
  dispose(): void {
    for (const { m, v } of this.moments.values()) {
      m.dispose()
      v.dispose()
    }
    this.moments.clear()
  }
}

export const adamwStep = (rt: Runtime, params: readonly Tensor[], state: AdamWState, hp: AdamWHyper): void => {
  if (!(hp.step >= 1) || !Number.isInteger(hp.step)) throw new TensorError({ message: `adamw: step must be an integer >= 1, got ${hp.step}` })
  const bc1 = 1 - hp.beta1 ** hp.step
  const sqrtBc2 = Math.sqrt(1 - hp.beta2 ** hp.step)
  for (const p of params) {
    p.assertLive()
    const g = p.grad
    if (g === null) continue
    let mv = state.moments.get(p)
    if (mv === undefined) {
      mv = { m: zerosLike(rt, p), v: zerosLike(rt, p) }
      rt.keep(mv.m)
      rt.keep(mv.v)
      state.moments.set(p, mv)
    }
    for (let c = 0; c < p.chunks; c++) {
      rt.run1d(
        adamwKernel,
        { g: g.binding(c), p: p.binding(c), m: mv.m.binding(c), v: mv.v.binding(c) },
        { n: p.chunkSize(c), bcast: 0, lr: hp.lr, beta1: hp.beta1, beta2: hp.beta2, eps: hp.eps, wd: hp.weightDecay, bc1, sqrtBc2 },
        p.chunkSize(c)
      )
    }
  }
}
