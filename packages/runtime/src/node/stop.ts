/**
 * When a node stops, as the operator said it: at a window (`--until-window N`: finish window N,
 * then stop), after a number of windows from now (`--windows N`: N windows from the live one, so a
 * restarted node trains N more), or (the in-process swarm) after the run's first N windows.
 */
import { Data } from "effect"

export type StopRule = Data.TaggedEnum<{
  UntilWindow: { readonly window: number }
  FromNow: { readonly windows: number }
  FromStart: { readonly windows: number }
}>
export const StopRule = Data.taggedEnum<StopRule>()

/** The last window a node finishes under `rule`, given the run's start window and the live window when it started. */
export const lastWindow = (rule: StopRule, start: number, live: number): number =>
  StopRule.$match(rule, {
    UntilWindow: (r) => r.window,
    FromNow: (r) => Math.max(live, start) + r.windows - 1,
    FromStart: (r) => start + r.windows - 1,
  })

export const describeStop = (rule: StopRule): string =>
  StopRule.$match(rule, {
    UntilWindow: (r) => `--until-window ${r.window}`,
    FromNow: (r) => `--windows ${r.windows}`,
    FromStart: (r) => `the run's first ${r.windows} windows`,
  })

/**
 * Why a peer would stop before training anything (the first window it could train, once caught
 * up, is after its last one), or undefined when it trains at least one window.
 */
export const nothingToTrain = (rule: StopRule, last: number, firstTrainable: number): string | undefined =>
  firstTrainable <= last
    ? undefined
    : `stops after window ${last} (${describeStop(rule)}) but the first window it could train is ${firstTrainable}: ` +
      `it will only catch up to window ${last} and train nothing (use --windows N for N more windows, or a later --until-window)`
