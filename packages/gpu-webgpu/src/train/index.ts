export * from "./schedule.ts"
export * from "./trainer.ts"
export * from "./optimizer-state.ts"
