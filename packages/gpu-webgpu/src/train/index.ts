export * from "./schedule.ts"
export * from "./trainer.ts"
