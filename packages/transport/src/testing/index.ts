/** Test and benchmark helpers; needs the s3rver dev dependency. Not part of the runtime API. */
export { LocalS3 } from "./LocalS3.ts"
