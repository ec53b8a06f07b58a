/** The outer optimizer steps the runtime applies to the shared parameters (float32). */
const f32 = Math.fround

/** SparseLoCo's outer step: plain SGD, `params -= lr * aggregated`. */
export const outerStep = (params: Float32Array, aggregated: Float32Array, lr: number): void => {
  const a = f32(lr)
  for (let i = 0; i < params.length; i++) params[i] = params[i]! - f32(a * aggregated[i]!)
}

/**
 * DiLoCo's outer step: SGD with Nesterov momentum as torch.optim.SGD(nesterov=True) does it,
 * `buf = mu * buf + g; params -= lr * (g + mu * buf)`. `momentum` is the caller's state (zeros at start).
 */
export const nesterovStep = (params: Float32Array, grad: Float32Array, momentum: Float32Array, lr: number, mu: number): void => {
  const a = f32(lr)
  const m = f32(mu)
  for (let i = 0; i < params.length; i++) {
    const g = grad[i]!
    const b = f32(f32(m * momentum[i]!) + g)
    momentum[i] = b
    params[i] = params[i]! - f32(a * f32(g + f32(m * b)))
  }
}

/** Mean of full-precision pseudo-gradients over peers (DiLoCo aggregation), sequential float32 sum in peer order. */
export const meanDense = (grads: readonly Float32Array[], out: Float32Array): void => {
  out.fill(0)
  for (const g of grads) for (let i = 0; i < out.length; i++) out[i] = out[i]! + g[i]!
  const n = grads.length
  if (n > 1) for (let i = 0; i < out.length; i++) out[i] = out[i]! / n
}
