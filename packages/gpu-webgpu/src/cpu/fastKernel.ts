/** How a fast CPU kernel is tied to the reference kernel it replaces (src/cpu/fast.ts runs them by name). */
import type { CpuViews, Kernel, KernelParams } from "../backend.ts"

/** A fast implementation of a kernel's CPU reference (same bindings, params and meaning). */
export type FastKernel = (views: CpuViews, p: KernelParams<string>) => void

/** Pairs a fast implementation with the kernel it replaces; `impl` gets that kernel's parameters, typed. */
export const fastFor = <P extends string>(kernel: Kernel<P>, impl: (views: CpuViews, p: KernelParams<P>) => void): readonly [string, FastKernel] =>
  // A backend hands a kernel the params of its dispatch, which Runtime.run checked against P.
  [kernel.name, (views, p) => impl(views, p as KernelParams<P>)]

